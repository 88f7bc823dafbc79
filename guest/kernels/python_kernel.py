"""The Python kernel of the code interpreter (docs/code-interpreter.md, "Kernel protocol").

Runs as `python3 -u python_kernel.py`: requests (paths of cell files) on fd 3, JSON-lines events
on fd 4. Start-up stays lean: matplotlib, asyncio, base64 and traceback are imported only when a
cell needs them.
"""
import _thread
import ast
import builtins
import fcntl
import json
import linecache
import os
import signal
import sys
import types

# The agent's pipes, moved to high descriptors closed on exec so that user code and its children
# neither see them at 3 and 4 nor inherit them.
REQUESTS = fcntl.fcntl(3, fcntl.F_DUPFD_CLOEXEC, 100)
EVENTS = fcntl.fcntl(4, fcntl.F_DUPFD_CLOEXEC, 100)
os.close(3)
os.close(4)

CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: a cell compiled with top-level await
RICH_REPRS = (('_repr_html_', 'text/html'), ('_repr_markdown_', 'text/markdown'),
              ('_repr_svg_', 'image/svg+xml'), ('_repr_png_', 'image/png'),
              ('_repr_jpeg_', 'image/jpeg'), ('_repr_json_', 'application/json'))

cell_running = False
event_loop = None
emitting = _thread.allocate_lock()  # display() may be called from the cell's threads, too


def emit(event):
    line = (json.dumps(event, ensure_ascii=False) + '\n').encode('utf-8', 'replace')
    # A KeyboardInterrupt in the middle of the line would break the protocol: hold SIGINT back
    # until the line is written (it is delivered, and interrupts the cell, right after).
    with emitting:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(EVENTS, view):]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def mime_value(mime, value):
    if isinstance(value, tuple):  # (data, metadata)
        value = value[0]
    if isinstance(value, (bytes, bytearray)):
        if mime.startswith('image/') and mime != 'image/svg+xml':
            import base64
            return base64.b64encode(value).decode('ascii')
        return bytes(value).decode('utf-8', 'replace')
    return value if isinstance(value, str) else json.dumps(value)


def rich_method(obj, name):
    # A class has the methods of its instances; IPython leaves them alone too.
    method = None if isinstance(obj, type) else getattr(obj, name, None)
    return method if callable(method) else None


def mime_bundle(obj):
    data = {}
    try:
        method = rich_method(obj, '_repr_mimebundle_')
        if method:
            bundle = method(include=None, exclude=None)
            bundle = bundle[0] if isinstance(bundle, tuple) else bundle
            data = {k: mime_value(k, v) for k, v in (bundle or {}).items() if v is not None}
        for name, mime in RICH_REPRS:
            method = None if mime in data else rich_method(obj, name)
            value = method() if method else None
            if value is not None:
                data[mime] = mime_value(mime, value)
    except Exception as exc:  # a broken rich repr costs its format, not the cell
        print(f'rich display of {type(obj).__name__} failed: {exc!r}', file=sys.stderr)
    data['text/plain'] = repr(obj)
    return data


def display(*objs):
    """Shows each object as a result of the running cell (as in Jupyter)."""
    for obj in objs:
        emit({'type': 'result', 'main': False, 'data': mime_bundle(obj)})


def show_figures(*args, **kwargs):
    """pyplot.show and the end of every cell: emit each open figure as a PNG, then close it."""
    pyplot = sys.modules.get('matplotlib.pyplot')
    if pyplot is None:
        return
    import base64
    import io
    for num in pyplot.get_fignums():
        figure = pyplot.figure(num)
        png = io.BytesIO()
        figure.savefig(png, format='png')
        pyplot.close(figure)
        emit({'type': 'result', 'main': False,
              'data': {'text/plain': repr(figure),
                       'image/png': base64.b64encode(png.getvalue()).decode('ascii')}})


class PyplotHook:
    """Replaces pyplot.show as matplotlib.pyplot is first imported, so that a cell that imports
    pyplot and calls show() in one go gets ours, without the kernel importing matplotlib."""

    def find_spec(self, name, path, target=None):
        if name != 'matplotlib.pyplot':
            return None
        sys.meta_path.remove(self)
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec and spec.loader:
            load = spec.loader.exec_module

            def load_and_patch(module):
                load(module)
                module.show = show_figures
            spec.loader.exec_module = load_and_patch
        return spec


def run(code, namespace):
    global event_loop
    value = eval(code, namespace)
    if code.co_flags & CO_COROUTINE:
        if event_loop is None:  # one loop for all cells: objects bound to a loop keep working
            import asyncio
            event_loop = asyncio.new_event_loop()
        value = event_loop.run_until_complete(value)
    return value


def run_cell(name, source, namespace):
    # linecache lets tracebacks (of this cell, and later of functions it defines) show its lines.
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    tree = ast.parse(source, name)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    run(compile(tree, name, 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT), namespace)
    if last:
        value = run(compile(ast.Expression(last.value), name, 'eval',
                            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT), namespace)
        if value is not None:
            emit({'type': 'result', 'main': True, 'data': mime_bundle(value)})
    show_figures()


def error_event(exc):
    import traceback
    # Start at the first frame of a cell; failing that (a broken repr of a library's object) at
    # the first frame of neither this kernel nor the parser.
    frames, tb = [], exc.__traceback__
    while tb:
        frames.append(tb)
        tb = tb.tb_next
    cells = [t for t in frames if t.tb_frame.f_code.co_filename.startswith('<cell-')]
    others = [t for t in frames
              if t.tb_frame.f_globals is not globals() and t.tb_frame.f_globals is not ast.__dict__]
    start = (cells or others or [None])[0]
    return {'type': 'error', 'name': type(exc).__name__, 'value': str(exc),
            'traceback': ''.join(traceback.format_exception(type(exc), exc, start))}


def on_sigint(signum, frame):
    if cell_running:
        raise KeyboardInterrupt


def flush_output():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


def main():
    global cell_running
    # User code sees the namespace as module __main__ (pickle and multiprocessing look there);
    # imports find modules in the current directory, not in the kernel's.
    user_module = types.ModuleType('__main__')
    sys.modules['__main__'] = user_module
    sys.path[0] = ''
    builtins.display = display
    sys.meta_path.insert(0, PyplotHook())
    signal.signal(signal.SIGINT, on_sigint)
    emit({'type': 'ready', 'language': 'python', 'version': sys.version.split()[0]})
    for count, line in enumerate(open(REQUESTS, 'rb'), 1):
        path = line.decode().rstrip('\n')
        error = None
        try:
            with open(path, encoding='utf-8') as file:
                source = file.read()
            try:
                os.unlink(path)
            except OSError:
                pass
            signal.signal(signal.SIGINT, on_sigint)  # in case the last cell replaced it
            cell_running = True
            run_cell(f'<cell-{count}>', source, user_module.__dict__)
        except BaseException as exc:  # KeyboardInterrupt and SystemExit end the cell, too
            error = exc
        # From here on a late SIGINT is ignored: nothing below raises on the cell's behalf.
        cell_running = False
        flush_output()
        if error is not None:
            emit(error_event(error))
            error = None  # its traceback holds the cell's frames and their objects
        emit({'type': 'done'})


main()
