"""HTTP from a test: one GET that answers what a user would have seen."""

import urllib.error
import urllib.request

LOOPBACK = "127.0.0.1"


def http_get(port, path="/", host=LOOPBACK, timeout=10):
    """(status, body) of a GET on ``host:port``; (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen("http://{}:{}{}".format(host, port, path), timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)
