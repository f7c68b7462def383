"""Real HTTP servers on loopback for the site walks' tests: backends answering their
health path, each in a thread, stopped on exit."""

import contextlib
import http.server
import threading

from support.ports import LOOPBACK


class _Health(http.server.BaseHTTPRequestHandler):
    path_ok = "/"
    delay = 0.0

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.delay:
            threading.Event().wait(self.delay)
        ok = self.path == self.path_ok
        body = (b"ok " if ok else b"not found ") + self.server.name.encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def backend(name, path="/", host=LOOPBACK, delay=0.0, port=0):
    """A started server answering 200 on ``path`` (after ``delay`` seconds), on ``port``
    (0: any free one); ``server.server_port``."""
    handler = type("Health", (_Health,), {"path_ok": path, "delay": delay})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.name = name
    threading.Thread(target=server.serve_forever, name="backend-" + name, daemon=True).start()
    return server


@contextlib.contextmanager
def backends(names, path="/", host=LOOPBACK, delay=0.0):
    """``{name: server}`` of started backends, shut down on exit."""
    started = {}
    try:
        for name in names:
            started[name] = backend(name, path, host, delay)
        yield started
    finally:
        for server in started.values():
            server.shutdown()
            server.server_close()
