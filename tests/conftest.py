"""Fixtures shared by every test suite.

* ``salt_local``: run the corpus Salt modules through a real, masterless
  ``salt-call --local`` configured under a temporary directory.
* pytest-salt-factories (``salt_factories`` and friends) stays available for
  the integration tests; its log server and event listener are kept on the
  loopback interface instead of listening on every address.
"""

import json
import os
import shutil
import subprocess
import sys
from typing import Any, NamedTuple, Optional

import pytest

from mc_project import localsalt

LOOPBACK = "127.0.0.1"

# One salt-call run should take seconds; this only stops a hung one.
SALT_CALL_TIMEOUT = 600


def salt_call_path():
    """The ``salt-call`` of the environment running the tests (the venv's)."""
    candidate = os.path.join(os.path.dirname(sys.executable), "salt-call")
    if os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("salt-call")
    if not found:
        raise RuntimeError("salt-call is not installed; run `make venv`")
    return found


class SaltCallResult(NamedTuple):
    """What one ``salt-call`` run gave; unpacks as a 4-tuple."""

    returncode: int
    data: Optional[Any]  # the parsed JSON document, None if stdout was not JSON
    stdout: str
    stderr: str

    @property
    def local(self):
        """The function's return: the ``local`` entry of the JSON document."""
        if isinstance(self.data, dict):
            return self.data.get("local")
        return None


def _traversable_mktemp(mktemp):
    """As root, projects' apps run as users of their own: they must be able to reach
    projects under pytest's temporary directories (made 0700) as they reach
    /srv/projects. Search permission only: nobody else can list them."""

    def wrapper(self, *args, **kwargs):
        path = mktemp(self, *args, **kwargs)
        for each in (path, path.parent, path.parent.parent):
            if each.name.startswith(("pytest-", "pytest-of-")) or each == path:
                os.chmod(each, 0o711)
        return path

    return wrapper


if os.geteuid() == 0:
    pytest.TempPathFactory.mktemp = _traversable_mktemp(pytest.TempPathFactory.mktemp)


@pytest.fixture
def salt_local(tmp_path):
    """Factory for masterless salt-call runners.

    ``salt_local(base_dir=None, projects_root=None, pillar=None, extra=None)``
    writes a minion configuration with ``localsalt.write_minion_config``
    (``base_dir`` defaults to a fresh directory under ``tmp_path``) and returns
    ``run(*args, check=False)``, which runs
    ``salt-call -c CONFDIR --local --out=json ARGS`` and returns
    ``(returncode, parsed_json_or_None, stdout, stderr)``. With ``check=True`` a
    non-zero exit fails the test with salt-call's output. ``run.config_dir``
    and ``run.base_dir`` tell where the configuration lives.
    """
    salt_call = salt_call_path()
    counter = {"n": 0}

    def factory(base_dir=None, projects_root=None, pillar=None, extra=None):
        if base_dir is None:
            counter["n"] += 1
            base_dir = tmp_path / "salt-local-{}".format(counter["n"])
        base_dir = os.path.abspath(str(base_dir))
        if projects_root is not None:
            projects_root = str(projects_root)
        config_dir = localsalt.write_minion_config(
            base_dir, projects_root=projects_root, pillar=pillar, extra=extra
        )

        def run(*args, check=False, timeout=SALT_CALL_TIMEOUT):
            cmd = [salt_call, "-c", config_dir, "--local", "--out=json"]
            cmd.extend(str(arg) for arg in args)
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            try:
                data = json.loads(proc.stdout)
            except ValueError:
                data = None
            if check and proc.returncode != 0:
                pytest.fail(
                    "{} exited {}\nstdout:\n{}\nstderr:\n{}".format(
                        " ".join(cmd), proc.returncode, proc.stdout, proc.stderr
                    ),
                    pytrace=False,
                )
            return SaltCallResult(proc.returncode, data, proc.stdout, proc.stderr)

        run.config_dir = config_dir
        run.base_dir = base_dir
        return run

    return factory


# --- pytest-salt-factories ---------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionstart(session):
    """Make the salt-factories log server bind the loopback address only.

    The plugin creates its log server in ``pytest_configure`` with a default of
    0.0.0.0 and starts it in ``pytest_sessionstart``: this wrapper runs just
    before that start.
    """
    log_server = session.config.pluginmanager.get_plugin("saltfactories-log-server")
    if log_server is not None:
        log_server.log_host = LOOPBACK
    yield


@pytest.fixture(scope="session")
def salt_factories_config():
    """Options for salt-factories' FactoriesManager: daemons log to loopback."""
    return {"log_server_host": LOOPBACK}


@pytest.fixture(scope="session")
def event_listener():
    """salt-factories' event listener, bound to the loopback address only."""
    from saltfactories.plugins.event_listener import EventListener

    listener = EventListener()
    listener.host = LOOPBACK
    listener.address = "tcp://{}:{}".format(LOOPBACK, listener.port)
    with listener:
        yield listener
