"""A stock Heroku-style Django app with no corpus files deploys, changes, rolls back,
restarts and rolls forward, keeping its database.

examples/django-app: a Procfile (gunicorn ``web:``, ``release:`` migrations), a
requirements.txt, a model with a migration and static files behind WhiteNoise. pip
reaches the package index once; later pushes with the same requirements reuse the
virtualenv.
"""

import os
import re

import pytest

from support.web import get_json, http_get


def notes(port):
    return get_json(port)


@pytest.mark.timeout(1200)
def test_django_app_deploys_unchanged_rolls_back_and_keeps_its_data(corpus):
    paths = corpus.init("notes", env="staging", keep_releases=5)
    src = corpus.source("django-app", name="notes")
    first = corpus.push(src, "notes")
    assert first.returncode == 0, first.stderr
    assert "virtualenv built" in first.stderr and "release: python manage.py migrate" in first.stderr
    port = corpus.port("notes")
    assert notes(port) == {"app": "django-app", "version": "1", "notes": 0}
    assert http_get(port, "/add?text=hello")[0] == 200
    assert notes(port)["notes"] == 1
    # collectstatic ran: the page names a hashed static file, and it is served
    status, page = http_get(port, "/")
    assert status == 200
    css = re.search(r'href="(/static/notes/style\.[0-9a-f]+\.css)"', page).group(1)
    assert http_get(port, css)[0] == 200
    # the database is under data/, not in the release
    assert os.path.exists(os.path.join(paths["data"], "db.sqlite3"))

    corpus.commit(src, {"VERSION": "2\n", "notes/templates/notes/index.html":
                        open(os.path.join(src, "notes/templates/notes/index.html")).read().replace(
                            "<h1>", "<h1 class=v2>")}, "v2")
    second = corpus.push(src, "notes")
    assert second.returncode == 0, second.stderr
    assert "virtualenv reused" in second.stderr
    assert notes(port) == {"app": "django-app", "version": "2", "notes": 1}
    releases = [r["id"] for r in corpus.salt("mc_project.releases", "notes", check=True).local]

    # Roll back, restart the whole supervisor (the build dirs are long gone), roll forward.
    assert corpus.salt("mc_project.rollback", "notes").returncode == 0
    assert notes(port)["version"] == "1"
    assert corpus.salt("mc_project.stop", "notes").returncode == 0
    assert http_get(port, "/")[0] is None
    started = corpus.salt("mc_project.start", "notes")
    assert started.returncode == 0, started.stderr
    assert notes(port) == {"app": "django-app", "version": "1", "notes": 1}
    forward = corpus.salt("mc_project.rollback", "notes", releases[-1])
    assert forward.returncode == 0, forward.stderr
    assert notes(port) == {"app": "django-app", "version": "2", "notes": 1}
    assert os.listdir(paths["build"]) == []
