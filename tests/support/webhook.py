"""A webhook sink for tests: an HTTP server on 127.0.0.1 that keeps every JSON body
POSTed to it (``posts``: ``(path, body)`` in order) and answers 200, or ``status``.

``with WebhookSink() as sink: ... sink.url("/hooks/T0/secret")``.
"""

import http.server
import json
import threading

from support.ports import LOOPBACK


class WebhookSink:
    def __init__(self, status=200):
        self.posts = []
        self.status = status
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the standard library's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                sink.posts.append((self.path, body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)
        self._thread.start()

    def url(self, path="/hook"):
        return "http://{}:{}{}".format(LOOPBACK, self.port, path)

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
