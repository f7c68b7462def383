"""A stock Heroku-style Node app with no corpus files deploys, changes and rolls back,
keeping its data.

examples/node-app: a package.json (one small dependency, pinned by package-lock.json)
whose ``build`` script writes ``dist/version.json``, and a Procfile ``web: node
server.js``. The first push runs ``npm ci`` and ``npm run build``; a push that did not
change the package files reuses ``node_modules``; the counter in ``$CORPUS_DATA``
survives deploys and rollbacks.
"""

import json
import os

import pytest

from support.web import get_json

pytestmark = pytest.mark.needs("node")


def summary(port, path="/"):
    answer = get_json(port, path)
    return {k: answer[k] for k in ("app", "version", "hits")}


@pytest.mark.timeout(900)
def test_node_app_builds_reuses_node_modules_and_rolls_back(corpus):
    paths = corpus.init("counter", env="staging", keep_releases=5)
    src = corpus.source("node-app", name="counter")
    first = corpus.push(src, "counter")
    assert first.returncode == 0, first.stderr
    # npm ci installed the locked dependency, then the build script ran
    assert "added 1 package" in first.stderr and "> node build.js" in first.stderr
    assert "node_modules reused" not in first.stderr
    port = corpus.port("counter")
    assert summary(port) == {"app": "node-app", "version": "1", "hits": 0}
    assert get_json(port, "/health")["status"] == "ok"
    assert summary(port, "/hit")["hits"] == 1
    assert summary(port, "/hit")["hits"] == 2
    assert json.load(open(os.path.join(paths["data"], "hits.json"))) == {"hits": 2}
    live = os.path.realpath(paths["current"])
    assert os.path.isfile(os.path.join(live, "dist", "version.json"))
    assert os.path.isfile(os.path.join(live, "node_modules", "ms", "package.json"))
    caches = [e for e in os.listdir(os.path.join(paths["root"], "cache")) if e.startswith("node-")]
    assert len(caches) == 1, caches

    # One file changes: no npm install, the build runs again, the counter is kept.
    corpus.commit(src, {"VERSION": "2\n"}, "v2")
    second = corpus.push(src, "counter")
    assert second.returncode == 0, second.stderr
    assert "node_modules reused" in second.stderr
    assert "added 1 package" not in second.stderr and "> node build.js" in second.stderr
    assert summary(port) == {"app": "node-app", "version": "2", "hits": 2}
    assert summary(port, "/hit")["hits"] == 3
    assert [e for e in os.listdir(os.path.join(paths["root"], "cache")) if e.startswith("node-")] == caches

    # Rollback: the old version answers, with the counter as it is now.
    back = corpus.salt("mc_project.rollback", "counter")
    assert back.returncode == 0, back.stderr
    assert summary(port) == {"app": "node-app", "version": "1", "hits": 3}
    assert os.listdir(paths["build"]) == []
