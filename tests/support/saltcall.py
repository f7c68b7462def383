"""A real, masterless ``salt-call --local`` configured under a directory of the test's.

``local_salt(base_dir, projects_root=None, pillar=None, extra=None)`` writes a minion
configuration with ``localsalt.write_minion_config`` and returns ``run(*args,
check=False, timeout=SALT_CALL_TIMEOUT)``, which runs ``salt-call -c CONFDIR --local
--out=json ARGS`` and returns a ``SaltCallResult``; ``check=True`` turns a non-zero exit
into an AssertionError carrying salt-call's output. ``run.config_dir`` and
``run.base_dir`` say where the configuration lives. The ``salt_local`` fixture
(tests/conftest.py) is this with a fresh directory per call.
"""

import json
import os
import shutil
import subprocess
import sys
from typing import Any, NamedTuple, Optional

from mc_project import localsalt

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


def local_salt(base_dir, projects_root=None, pillar=None, extra=None):
    base_dir = os.path.abspath(str(base_dir))
    if projects_root is not None:
        projects_root = str(projects_root)
    config_dir = localsalt.write_minion_config(base_dir, projects_root=projects_root, pillar=pillar,
                                               extra=extra)
    salt_call = salt_call_path()

    def run(*args, check=False, timeout=SALT_CALL_TIMEOUT):
        cmd = [salt_call, "-c", config_dir, "--local", "--out=json"] + [str(arg) for arg in args]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            data = None
        if check and proc.returncode != 0:
            raise AssertionError("{} exited {}\nstdout:\n{}\nstderr:\n{}".format(
                " ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
        return SaltCallResult(proc.returncode, data, proc.stdout, proc.stderr)

    run.config_dir = config_dir
    run.base_dir = base_dir
    return run
