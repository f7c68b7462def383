"""What tests on real LXC share, built once per machine and reused between runs.

* ``golden(lxc_path)``: the golden container in ``lxc_path``, a copy of the machine's cached
  golden image (``/var/cache/corpus/golden``, or ``$CORPUS_GOLDEN_CACHE``), built from the
  Debian template the first time (about a minute), copied in ~2 s afterwards.
* ``wheelhouse()``: the machine's shared wheelhouse of corpus and its dependencies for
  ``install_minion`` (``mc_project.controller.wheelhouse``, the one ``corpus-controller
  init`` and the controller tests use): the dependencies are built once, the corpus
  wheel again whenever the working tree changed, so containers run the code under test.
  ``wheelhouse_dir()`` says where it is: the machine's (``/var/cache/corpus``) when this
  user may write there (root), else one in the user's own cache directory.
"""

import os

from mc_project.controller import wheelhouse as controller_wheelhouse
from mc_project.node import lxc


def golden(lxc_path, mirror=None, suite=lxc.DEFAULT_SUITE, disk_size_mb=lxc.DEFAULT_DISK_SIZE_MB):
    """Make ``lxc_path`` hold the golden container; returns ``lxc.golden``'s answer."""
    mirror = mirror or os.environ.get("CORPUS_DEBIAN_MIRROR") or lxc.DEFAULT_MIRROR
    return lxc.golden(lxc_path, mirror, suite, disk_size_mb)


def _writable(path):
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return os.access(path, os.W_OK | os.X_OK)


def wheelhouse_dir():
    """Where the tests' wheelhouse lives (see the module's docstring)."""
    shared = controller_wheelhouse.shared_cache()
    if _writable(shared):
        return shared
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "corpus", "wheelhouse")


def wheelhouse():
    """The tests' wheelhouse directory, current with this working tree."""
    return controller_wheelhouse.ensure_wheelhouse(wheelhouse_dir())
