"""A bounded request loop against an app, counting what a user would have seen fail.

``LoadLoop(url, clients=2).start()`` runs ``clients`` threads: half open a new
connection per request (a browser's first visit, a health checker), half keep one
connection alive across requests (a browser, a reverse proxy). ``stop()`` returns the
counts: requests, failed (no HTTP answer: refused, reset, timeout), non-2xx, and the
set of bodies' ``version`` fields seen. Each request has a timeout, so the loop ends.
"""

import http.client
import json
import threading
import time
import urllib.parse


class LoadLoop:
    def __init__(self, url, clients=2, timeout=10.0):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.path = parsed.path or "/"
        self.clients = clients
        self.timeout = timeout
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "failed": 0, "non_2xx": 0}
        self.errors = []
        self.versions = set()
        self.threads = []

    def start(self):
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n % 2 == 1,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def _client(self, keep_alive):
        conn = None
        while not self.stopping.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
                self._count(resp.status, body)
                if resp.will_close or not keep_alive:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self._fail(exc)
                conn.close()
                conn = None
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def _count(self, status, body):
        with self.lock:
            self.counts["requests"] += 1
            if not 200 <= status < 300:
                self.counts["non_2xx"] += 1
                self.errors.append("HTTP {}: {!r}".format(status, body[:200]))
                return
            try:
                self.versions.add(json.loads(body).get("version"))
            except (ValueError, AttributeError):
                pass

    def _fail(self, exc):
        with self.lock:
            self.counts["requests"] += 1
            self.counts["failed"] += 1
            self.errors.append("{}: {}".format(type(exc).__name__, exc))

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(self.timeout + 5)
        return dict(self.counts, versions=sorted(v for v in self.versions if v is not None),
                    errors=self.errors[:10])
