"""A tiny web app that echoes its environment and its ids (corpus test project)."""

import json
import os
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/env":
            name = urllib.parse.parse_qs(url.query).get("name", [""])[0]
            answer = {"name": name, "value": os.environ.get(name)}
        elif url.path == "/whoami":
            answer = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                      "groups": sorted(os.getgroups())}
        else:
            with open(os.path.join(HERE, "VERSION"), encoding="utf-8") as fh:
                answer = {"app": "envecho", "version": fh.read().strip()}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])),
                        Handler).serve_forever()
