"""What tests on real LXC need, built once per machine and reused between runs.

* ``golden(lxc_path)``: the golden container in ``lxc_path``, a copy of the machine's cached
  golden image (``/var/cache/corpus/golden``, or ``$CORPUS_GOLDEN_CACHE``), built from the
  Debian template the first time (about a minute), copied in ~2 s afterwards.
* ``wheelhouse()``: a wheelhouse of corpus and its dependencies for ``install_minion``. The
  dependencies are cached under ``/var/cache/corpus/`` (keyed by setup.py); the corpus wheel
  is rebuilt from the working tree on each call, so containers run the code under test.
* ``lxc_skip_reason()``: why real LXC tests cannot run here, or None.
"""

import hashlib
import os
import shutil
import subprocess
import sys

from mc_project.node import lxc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELHOUSE_CACHE = "/var/cache/corpus"
TOOLS = ("lxc-create", "lxc-start", "lxc-attach", "nft", "haproxy", "ip", "resize2fs", "debootstrap")


def lxc_skip_reason():
    if os.geteuid() != 0:
        return "real LXC containers need root"
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        return "missing on this machine: {}".format(", ".join(missing))
    return None


def golden(lxc_path, mirror=None, suite=lxc.DEFAULT_SUITE, disk_size_mb=lxc.DEFAULT_DISK_SIZE_MB):
    """Make ``lxc_path`` hold the golden container; returns ``lxc.golden``'s answer."""
    mirror = mirror or os.environ.get("CORPUS_DEBIAN_MIRROR") or lxc.DEFAULT_MIRROR
    return lxc.golden(lxc_path, mirror, suite, disk_size_mb)


def _setup_hash():
    with open(os.path.join(REPO, "setup.py"), "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:12]


def wheelhouse():
    """A wheelhouse directory with this tree's corpus wheel and every dependency."""
    path = os.path.join(WHEELHOUSE_CACHE, "wheelhouse-tests-{}".format(_setup_hash()))
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check"]
    if not os.path.isdir(path):
        partial = path + ".part"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(pip + [REPO, "-w", partial], check=True, stdout=subprocess.DEVNULL)
        os.replace(partial, path)
    else:
        for name in os.listdir(path):
            if name.startswith("corpus-") and name.endswith(".whl"):
                os.unlink(os.path.join(path, name))
        subprocess.run(pip + ["--no-deps", REPO, "-w", path], check=True, stdout=subprocess.DEVNULL)
    return path
