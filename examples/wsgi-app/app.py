"""A small WSGI app that keeps a visit counter in the project's persistent data/."""

import json
import os
from wsgiref.simple_server import make_server

DATA = os.environ.get("CORPUS_DATA", "data")
DB = os.path.join(DATA, "db.json")
VERSION = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")).read().strip()


def load():
    with open(DB, encoding="utf-8") as fh:
        return json.load(fh)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/health":
        db = load()  # unhealthy when the data is missing or not migrated
        ok = db.get("schema") == 2
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ok\n" if ok else b"data not migrated\n"]
    db = load()
    db["visits"] = db.get("visits", 0) + 1
    # Two releases run side by side while a deploy switches: each writes its own temp file.
    tmp = "{}.tmp-{}".format(DB, os.getpid())
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(db, fh)
    os.replace(tmp, DB)
    body = json.dumps({"app": "wsgi-app", "version": VERSION, "visits": db["visits"],
                       "greeting": os.environ.get("GREETING", "hello")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


if __name__ == "__main__":
    make_server(os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"]), app).serve_forever()
