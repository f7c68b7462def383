"""Fixtures and hooks shared by every test suite (helpers live in tests/support/).

* ``salt_local``: run the corpus Salt modules through a real, masterless
  ``salt-call --local`` configured under a temporary directory.
* ``@pytest.mark.needs("root", "lxc", ...)``: what a group of tests needs from the
  machine; without it they skip with one line naming what is missing
  (tests/support/needs.py), before any fixture is set up.
* pytest-salt-factories (``salt_factories`` and friends) stays available for
  the integration tests; its log server and event listener are kept on the
  loopback interface instead of listening on every address.
"""

import collections
import logging
import os

import pytest

from support import needs
from support.saltcall import local_salt

LOOPBACK = "127.0.0.1"
# The real controller, its nodes, PowerDNS and SMTP sink the environment tests share.
pytest_plugins = ["support.controller_fixtures"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs(*requirements): skip (in one line) unless the machine has them; "
                   "the names are tests/support/needs.py's REQUIREMENTS")


# The tests that make LXC containers and nodes with fixed names (node1 and node2, their bridge,
# subnets and LXC paths: the controller's tests and the web page's flow over them) run on one
# worker, one after another; the other tests that make nodes and containers (under names of
# their own) or build the shared wheelhouse run on one other worker. Everything else runs
# beside them.
CONTROLLER_NODES = "lxc"
LXC_TESTS = {
    "tests/integration/controller/": CONTROLLER_NODES,
    "tests/integration/web/flow/": CONTROLLER_NODES,
    "tests/integration/test_link_node.py": "lxc-nodes",
    "tests/integration/test_node_lxc.py": "lxc-nodes",
    "tests/integration/test_node_teardown.py": "lxc-nodes",
    "tests/integration/test_controller_init.py": "lxc-nodes",
    "tests/integration/test_install_non_editable.py": "lxc-nodes",
}
# The longest groups, longest first (seconds in a CI run, --durations): each worker starts with
# one of them, so that the run does not end with one worker alone on a long group.
LONG_GROUPS = (
    CONTROLLER_NODES,                           # ~1200 s
    "lxc-nodes",                                # ~660 s
    "tests/integration/test_crash_matrix.py",   # ~600 s
    "tests/integration/inventory",              # ~360 s
    "tests/integration/api",                    # ~200 s
    "tests/functional/test_bench_smoke.py",     # ~150 s, one test
    "tests/integration/test_phase_failures.py",  # ~140 s
)


def worker_group(nodeid):
    """The tests pytest-xdist runs whole, in order, on one worker: the tests that make
    containers or nodes (``LXC_TESTS``: two groups); a directory under tests/integration/ (its
    package fixtures: a master, an API server, exist once); otherwise a test module (its module
    fixtures, set up once)."""
    path = nodeid.split("::", 1)[0]
    for prefix, group in LXC_TESTS.items():
        if path.startswith(prefix):
            return group
    parts = path.split("/")
    if parts[:2] == ["tests", "integration"] and len(parts) > 3:
        return "/".join(parts[:-1])
    return path


def _group_rank(group, sizes):
    """Where a group goes in the run: the long ones first, then the others by their number of
    tests, most first."""
    if group in LONG_GROUPS:
        return (0, LONG_GROUPS.index(group))
    return (1, -sizes[group])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Each group's tests together, the groups in ``_group_rank``'s order (pytest-xdist hands
    them out in this order); the tests of a group keep their order."""
    groups = [worker_group(item.nodeid) for item in items]
    sizes = collections.Counter(groups)
    order = sorted(range(len(items)), key=lambda i: (_group_rank(groups[i], sizes), i))
    items[:] = [items[i] for i in order]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With ``make test PYTEST_WORKERS=N`` each worker gets whole groups (``worker_group``), in
    the collection's order (``pytest_collection_modifyitems``), not by their number of tests."""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class ByWorkerGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return worker_group(nodeid)

    return ByWorkerGroup(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    marks = list(item.iter_markers_with_node("needs"))
    if marks:
        node, closest = marks[0]
        # a module's pytestmark groups its tests; a conftest names its directory
        group = closest.kwargs.get("group") or node.path
        needs.require(*[name for _node, mark in marks for name in mark.args], group=group)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip from ``support.needs`` is reported at its group (a module, a directory, a
    support module), so ``-rs`` shows one line for the group, not one per test."""
    report = yield
    group = getattr(call.excinfo.value, "needs_group", None) if call.excinfo else None
    if group and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (group, None, report.longrepr[2])
    return report


def _traversable_mktemp(mktemp):
    """As root, projects' apps run as users of their own: they must be able to reach
    projects under pytest's temporary directories (made 0700) as they reach
    /srv/projects. Search permission only: nobody else can list them. The directories
    are the new one and pytest's above it: ``pytest-of-USER/pytest-N/`` (or the run's
    ``--basetemp``, named ``pytest-*`` by make test) and, under pytest-xdist, a worker's
    ``popen-gwN/``."""

    def wrapper(self, *args, **kwargs):
        path = mktemp(self, *args, **kwargs)
        os.chmod(path, 0o711)
        for each in path.parents:
            if not each.name.startswith(("pytest-", "popen-gw")):
                break
            os.chmod(each, 0o711)
        return path

    return wrapper


if os.geteuid() == 0:
    pytest.TempPathFactory.mktemp = _traversable_mktemp(pytest.TempPathFactory.mktemp)


@pytest.fixture
def salt_local(tmp_path):
    """Factory for masterless salt-call runners (support.saltcall.local_salt).

    ``salt_local(base_dir=None, projects_root=None, pillar=None, extra=None)``;
    ``base_dir`` defaults to a fresh directory under ``tmp_path``.
    """
    counter = {"n": 0}

    def factory(base_dir=None, projects_root=None, pillar=None, extra=None):
        if base_dir is None:
            counter["n"] += 1
            base_dir = tmp_path / "salt-local-{}".format(counter["n"])
        return local_salt(base_dir, projects_root=projects_root, pillar=pillar, extra=extra)

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


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Drop what Salt's temporary log handler still holds.

    Importing Salt in this process installs a handler that keeps every warning it
    sees (the daemons' logs that salt-factories' log server forwards: "received a
    SIGTERM", "unclosed Runner" ...) and writes them at interpreter exit to the
    stderr it found at import time: pytest's capture, closed by then, which made
    about a thousand "--- Logging error ---" tracebacks follow the summary. A test's
    report already holds its daemons' logs.
    """
    try:
        from salt._logging import impl
    except ImportError:
        return
    handler = impl.get_temp_handler()
    if handler is None:
        return
    if handler in logging.root.handlers:
        logging.root.removeHandler(handler)
    handler.sync_with_handlers(())  # empties its queue, sends nothing anywhere
