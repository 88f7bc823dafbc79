"""Test servers for the networking e2e test, run inside a network namespace the test made:
  TCP on 0.0.0.0:PORT for each port given: answers "hello ADDR:PORT from PEER" and logs
      "<time> tcp ADDR:PORT PEER" to LOGDIR/events.log;
  TCP on 0.0.0.0:9001: a sink; reads to the end and answers the byte count;
  UDP on 0.0.0.0:9000: logs "<time> udp ADDR:9000 PEER DATA" and answers "pong";
  DNS on DNS_ADDR:53 (UDP): A records for the names given as NAME=ADDR (TTL 60), NXDOMAIN for
      the rest; logs "<time> dns NAME PEER".
Writes LOGDIR/ready once everything listens. Stops by itself after LIFETIME seconds.
usage: net-servers.py LOGDIR LIFETIME DNS_ADDR PORT,PORT,... NAME=ADDR...
"""
import os
import socket
import struct
import sys
import threading
import time

logdir, lifetime, dns_addr, ports = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
names = dict(arg.split("=", 1) for arg in sys.argv[5:])
lock = threading.Lock()


def log(line):
    with lock, open(os.path.join(logdir, "events.log"), "a") as f:
        f.write("%.3f %s\n" % (time.time(), line))


def tcp_server(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, peer = s.accept()
        local = c.getsockname()
        log("tcp %s:%d %s" % (local[0], local[1], peer[0]))
        try:
            c.sendall(b"hello %s:%d from %s\n" % (local[0].encode(), local[1], peer[0].encode()))
        except OSError:
            pass
        c.close()


def sink_server():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 9001))
    s.listen(8)
    while True:
        c, peer = s.accept()
        total = 0
        while True:
            data = c.recv(1 << 16)
            if not data:
                break
            total += len(data)
        log("sink %d bytes from %s" % (total, peer[0]))
        c.sendall(b"%d\n" % total)
        c.close()


def udp_server():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 9000))
    while True:
        data, peer = s.recvfrom(2048)
        log("udp %s %s %s" % ("9000", peer[0], data.decode(errors="replace")))
        s.sendto(b"pong", peer)


def dns_name(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode())
        off += 1 + n
    return ".".join(labels), off + 1


def dns_server():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((dns_addr, 53))
    while True:
        msg, peer = s.recvfrom(2048)
        try:
            qid, flags, qd = struct.unpack(">HHH", msg[:6])
            name, end = dns_name(msg, 12)
            qtype, qclass = struct.unpack(">HH", msg[end:end + 4])
        except (struct.error, IndexError, UnicodeDecodeError):
            continue
        log("dns %s %s" % (name, peer[0]))
        question = msg[12:end + 4]
        addr = names.get(name.lower().rstrip("."))
        if addr is None:
            reply = struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
        elif qtype == 1:
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
            reply = struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer
        else:  # the name exists, but has no record of that type (AAAA)
            reply = struct.pack(">HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question
        s.sendto(reply, peer)


for port in ports.split(","):
    threading.Thread(target=tcp_server, args=(int(port),), daemon=True).start()
threading.Thread(target=udp_server, daemon=True).start()
threading.Thread(target=sink_server, daemon=True).start()
threading.Thread(target=dns_server, daemon=True).start()
time.sleep(0.5)
open(os.path.join(logdir, "ready"), "w").close()
time.sleep(lifetime)
