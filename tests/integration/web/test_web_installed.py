"""The web page from a regular (non-editable) install: corpus's wheel, built from a copy
of this tree as ``pip install .`` builds it, carries the templates, the CSS and script,
and the vendored htmx with its licences, and the installed package serves them."""

import importlib.util
import os
import subprocess
import sys

import pytest

INTEGRATION = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB_FILES = ("templates/base.html", "templates/job.html", "static/corpus.css", "static/corpus.js",
             "static/vendor/htmx-2.0.11.min.js", "static/vendor/htmx-ext-sse-2.2.4.min.js",
             "static/vendor/LICENSE.htmx", "static/vendor/LICENSE.htmx-ext-sse")
SERVE = """
import os, sys
import mc_project
from fastapi.testclient import TestClient
from mc_project.api.app import create_app
assert mc_project.__file__.startswith(sys.argv[1]), mc_project.__file__
root = sys.argv[2]
opts = {"corpus": {"db_url": "sqlite:///" + os.path.join(root, "inventory.sqlite"),
                   "secrets_key": os.path.join(root, "secrets.key"), "master_address": "127.0.0.1"},
        "cachedir": os.path.join(root, "cache"), "sock_dir": os.path.join(root, "sock")}
client = TestClient(create_app(opts), follow_redirects=False)
login = client.get("/web/login")
assert login.status_code == 200 and 'name="csrf_token"' in login.text, login.text
for path in ("/web/static/corpus.css", "/web/static/vendor/htmx-2.0.11.min.js",
             "/web/static/vendor/htmx-ext-sse-2.2.4.min.js"):
    assert client.get(path).status_code == 200, path
assert client.get("/web/").headers["location"] == "/web/login?next=/web/"
print("served")
"""


def _install_test():
    """tests/integration/test_install_non_editable.py, for its copy of the tree."""
    spec = importlib.util.spec_from_file_location("corpus_install_test",
                                                  os.path.join(INTEGRATION, "test_install_non_editable.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """corpus's wheel built from a copy of the tree and installed (without its
    dependencies, which this venv has) into a directory of its own."""
    top = tmp_path_factory.mktemp("web-install")
    tree = _install_test().copy_of_the_tree(str(top / "tree"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(top / "wheels"), tree], capture_output=True, text=True,
                           timeout=600, cwd="/")
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = [name for name in os.listdir(top / "wheels") if name.endswith(".whl")][0]
    target = top / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                           str(top / "wheels" / wheel)], capture_output=True, text=True, timeout=600, cwd="/")
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def test_the_installed_package_holds_the_pages_files(installed):
    for name in WEB_FILES:
        assert os.path.isfile(os.path.join(installed, "mc_project", "web", name)), name


def test_the_installed_package_serves_the_page(installed, tmp_path):
    # From /, with the install first on the path: not this checkout's mc_project.
    served = subprocess.run([sys.executable, "-c", SERVE, str(installed), str(tmp_path)], capture_output=True,
                            text=True, timeout=300, cwd="/", env=dict(os.environ, PYTHONPATH=str(installed)))
    assert served.returncode == 0, served.stderr[-3000:]
    assert served.stdout.strip().endswith("served")
