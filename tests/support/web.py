"""HTTP from a test: one GET that answers what a user would have seen."""

import json
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


def get_json(port, path="/", host=LOOPBACK, timeout=20):
    """The JSON document a GET on ``host:port`` answers (asked for with ``Accept``);
    anything but HTTP 200 fails the test with what came back."""
    request = urllib.request.Request("http://{}:{}{}".format(host, port, path),
                                     headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, body = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    assert status == 200, (status, body)
    return json.loads(body)
