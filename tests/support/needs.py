"""What a group of tests needs from the machine, and one line saying what is missing.

A test module says ``pytestmark = pytest.mark.needs("root", "lxc", ...)`` (or a
conftest adds the mark to its directory's tests); tests/conftest.py checks the mark
before any fixture is set up. A fixture or helper calls ``require(...)`` itself. Either
way the test skips with one line, ``needs root, lxc-create (lxc)``, the same for the
whole group, so ``pytest -rs`` shows one line per group.

As root after ``scripts/install-deps`` (``make test`` sets ``CORPUS_TESTS_STRICT=1``)
a missing package is a bug of install-deps, not a reason to skip: the test fails.
"""

import os
import shutil

import pytest

# The sbin directories hold several of these; a normal user's PATH often lacks them.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
PDNS_SQLITE_SCHEMAS = (
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
)
PG_BIN = "/usr/lib/postgresql/15/bin"


def command(name):
    """The path of command ``name`` (sbin directories included), or None."""
    return shutil.which(name, path=SEARCH_PATH)


def _commands(*names):
    return lambda: all(command(name) for name in names)


def _any_file(*paths):
    return lambda: any(os.path.exists(path) for path in paths)


# name: (what the skip line says, the check). Commands name their Debian package.
REQUIREMENTS = {
    "root": ("root", lambda: os.geteuid() == 0),
    "lxc": ("LXC (lxc-create, lxc-start, lxc-attach: lxc)",
            _commands("lxc-create", "lxc-start", "lxc-attach", "lxc-destroy", "lxc-ls")),
    "debootstrap": ("debootstrap", _commands("debootstrap")),
    "nft": ("nft (nftables)", _commands("nft")),
    "haproxy": ("haproxy", _commands("haproxy")),
    "ip": ("ip (iproute2)", _commands("ip")),
    "resize2fs": ("resize2fs (e2fsprogs)", _commands("resize2fs")),
    "sshd": ("sshd (openssh-server)", _commands("sshd")),
    "chpasswd": ("chpasswd (passwd)", _commands("chpasswd")),
    "ssh-keygen": ("ssh-keygen (openssh-client)", _commands("ssh-keygen")),
    "openssl": ("openssl", _commands("openssl")),
    "pdns": ("pdns_server with its SQLite backend (pdns-server, pdns-backend-sqlite3)",
             lambda: bool(command("pdns_server")) and _any_file(*PDNS_SQLITE_SCHEMAS)()),
    "postgresql": ("PostgreSQL 15 (postgresql)",
                   lambda: os.path.exists(os.path.join(PG_BIN, "initdb")) and bool(command("runuser"))),
    "node": ("node and npm (nodejs, npm)", _commands("node", "npm")),
    "slapd": ("slapd and ldapadd (slapd, ldap-utils)", _commands("slapd", "ldapadd")),
}

# The tools a real LXC node uses (tests/integration/test_node_lxc.py, the controller tests).
LXC_NODE = ("root", "lxc", "debootstrap", "nft", "haproxy", "ip", "resize2fs")


def strict():
    return os.environ.get("CORPUS_TESTS_STRICT") == "1"


def missing(*needs):
    """The labels of the requirements in ``needs`` this machine does not meet."""
    unknown = [need for need in needs if need not in REQUIREMENTS]
    if unknown:
        raise ValueError("unknown test requirement(s): {}".format(", ".join(unknown)))
    seen = []
    for need in needs:
        label, check = REQUIREMENTS[need]
        if label not in seen and not check():
            seen.append(label)
    return seen


def reason(*needs):
    """``"needs X, Y"`` for what is missing, or None when nothing is."""
    lacking = missing(*needs)
    return "needs {}".format(", ".join(lacking)) if lacking else None


def require(*needs, group=None, what=None):
    """Skip the calling test (fail it in strict mode) when the machine lacks one of ``needs``.

    The skip line reads ``[what ]needs X, Y``; ``group`` (a file or directory) is where
    ``pytest -rs`` reports it, once for all the tests it skipped (tests/conftest.py's
    ``pytest_runtest_makereport``), instead of once per test.
    """
    why = reason(*needs)
    if why is None:
        return
    if what:
        why = "{} {}".format(what, why)
    if strict() and os.geteuid() == 0:
        pytest.fail("{}, although scripts/install-deps ran as root (CORPUS_TESTS_STRICT=1)".format(why),
                    pytrace=False)
    skipped = pytest.skip.Exception(why)
    skipped.needs_group = str(group) if group else None
    raise skipped
