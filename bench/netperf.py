"""TCP throughput and round-trip latency, guest to host, for bench/net-vs-qemu.
  netperf.py server ADDR       a sink on ADDR:5001 (reads to EOF, answers the byte count) and
                               an echo on ADDR:5002; runs until killed
  netperf.py client ADDR MIB ROUNDS
                               sends MIB MiB to the sink, then ROUNDS one-byte round trips to
                               the echo; prints "NETPERF mbit_s=X rtt_ms=Y" (Y: the median)
"""
import socket
import sys
import threading
import time


def sink(conn):
    total = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        total += len(data)
    conn.sendall(b"%d\n" % total)
    conn.close()


def echo(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(64)
        if not data:
            break
        conn.sendall(data)
    conn.close()


def serve(addr, port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def client(addr, mib, rounds):
    block = b"x" * (1 << 16)
    s = socket.create_connection((addr, 5001), timeout=120)
    t0 = time.monotonic()
    for _ in range(mib * 16):
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    got = int(s.makefile().readline())
    seconds = time.monotonic() - t0
    if got != mib << 20:
        sys.exit("netperf: the sink got %d of %d bytes" % (got, mib << 20))
    e = socket.create_connection((addr, 5002), timeout=30)
    e.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    for _ in range(rounds):
        t = time.monotonic()
        e.sendall(b"p")
        if e.recv(1) != b"p":
            sys.exit("netperf: echo broke")
        rtts.append(time.monotonic() - t)
    rtts.sort()
    print("NETPERF mbit_s=%.1f rtt_ms=%.3f" % (got * 8 / seconds / 1e6, rtts[len(rtts) // 2] * 1e3),
          flush=True)


if sys.argv[1] == "server":
    threading.Thread(target=serve, args=(sys.argv[2], 5001, sink), daemon=True).start()
    serve(sys.argv[2], 5002, echo)
else:
    client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
