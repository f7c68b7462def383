"""A tiny web app that says which version of it runs (corpus test project)."""

import json
import os
from wsgiref.simple_server import make_server

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = open(os.path.join(HERE, "VERSION"), encoding="utf-8").read().strip()


def app(environ, start_response):
    body = json.dumps({"app": "slow", "version": VERSION}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


if __name__ == "__main__":
    make_server("127.0.0.1", int(os.environ["PORT"]), app).serve_forever()
