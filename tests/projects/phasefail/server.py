"""A tiny web app that says which version of it runs (corpus test project)."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            status, body, kind = 200, b"ok\n", "text/plain"
        else:
            # Read on each request: in editable mode the checkout may change under us.
            with open(os.path.join(HERE, "VERSION"), encoding="utf-8") as fh:
                version = fh.read().strip()
            body = json.dumps({"app": "phasefail", "version": version,
                               "greeting": os.environ.get("GREETING", "")}).encode()
            status, kind = 200, "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
