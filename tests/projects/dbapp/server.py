"""A tiny web app that writes rows into its DATABASE_URL (corpus test project)."""

import json
import os
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
URL = os.environ.get("DATABASE_URL", "")
LOCK = threading.Lock()


def sqlite_file():
    return URL[len("sqlite:///"):] if URL.startswith("sqlite:///") else None


def rows(write=False):
    path = sqlite_file()
    if path is None:
        return None
    with LOCK:
        conn = sqlite3.connect(path, timeout=30)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS hits (n INTEGER PRIMARY KEY, at TEXT)")
            if write:
                conn.execute("INSERT INTO hits (at) VALUES (datetime('now'))")
                conn.commit()
            return conn.execute("SELECT count(*) FROM hits").fetchone()[0]
        finally:
            conn.close()


class Handler(BaseHTTPRequestHandler):
    def answer(self, write):
        if self.path == "/health":
            body, kind = b"ok\n", "text/plain"
        else:
            with open(os.path.join(HERE, "VERSION"), encoding="utf-8") as fh:
                version = fh.read().strip()
            body = json.dumps({"version": version, "count": rows(write),
                               "scheme": URL.split(":", 1)[0], "url": URL if sqlite_file() else None}).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(write=self.path == "/write")

    def do_POST(self):
        self.answer(write=True)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
