"""corpus installed as the README says (``pip install .``, not editable) runs a controller.

A fresh virtualenv gets a regular install of a copy of this tree (the tree's own
``build/`` and ``*.egg-info`` stay untouched), then ``corpus-controller init`` with the
README's options builds the wheelhouse -- the corpus wheel put back together from the
installed files, never asked of the package index -- and starts a master whose runners
answer. The wheelhouse installs corpus and salt with no index, and a second init finds
it current. As a normal user, a path init cannot write is one sentence and exit status 2.
"""

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from support.ports import free_ports

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPBACK = "127.0.0.1"
UNPRIVILEGED = "nobody"
# Never copied: they are what a regular install must not need (or must not touch).
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", ".demo", "build", "dist", "*.egg-info", "_data",
                                  "__pycache__", "*.pyc", ".ruff_cache", ".pytest_cache")
PIP_TIMEOUT = 900


def run(command, timeout=300, env=None, user=None):
    """``command``'s result, run from ``/``: ``python -c`` would import this tree's corpus
    from a working directory inside it."""
    if user:
        command = ["runuser", "-u", user, "--"] + command
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, env=env, cwd="/")


def copy_of_the_tree(dest):
    """The files ``pip install .`` of this tree would see, as they are now, in ``dest``."""
    listed = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=False)
    if listed.returncode != 0:  # not a checkout: everything but what LEFT_OUT names
        shutil.copytree(REPO, dest, symlinks=True, ignore=LEFT_OUT)
        return dest
    for name in sorted(set(filter(None, listed.stdout.decode().split("\0")))):
        source = os.path.join(REPO, name)
        if os.path.isfile(source) or os.path.islink(source):  # listed but deleted: left out
            os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(source, os.path.join(dest, name), follow_symlinks=False)
    return dest


def reachable_by_all(path):
    """Whether every user can reach ``path`` (each directory above it is searchable)."""
    path = os.path.abspath(path)
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return False
    return True


def shared_tempdir(prefix):
    """A new 0755 directory that every user can reach (pytest's own are private)."""
    base = tempfile.gettempdir()
    if not reachable_by_all(os.path.join(base, "x")):
        base = "/var/tmp"
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(path, 0o755)
    return path


def make_venv(python, where, tree):
    """A new virtualenv at ``where`` made by ``python``, with a regular install of ``tree``."""
    made = run([python, "-m", "venv", where], timeout=300)
    assert made.returncode == 0, made.stderr
    installed = run([os.path.join(where, "bin", "pip"), "install", "--quiet", tree], timeout=PIP_TIMEOUT)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return os.path.join(where, "bin")


@pytest.fixture(scope="module")
def places():
    """A directory of the module's own that every user can reach (removed at the end)."""
    top = shared_tempdir("corpus-install-")
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def tree(places):
    return copy_of_the_tree(os.path.join(places, "tree"))


@pytest.fixture(scope="module")
def venv_bin(places, tree):
    # sys.executable may be a virtualenv's: venv makes the new one from its base Python.
    return make_venv(sys.executable, os.path.join(places, "venv"), tree)


def corpus_files(bin_dir):
    """Where the virtualenv's corpus is, and whether it is a checkout (it must not be)."""
    probe = run([os.path.join(bin_dir, "python"), "-c",
                 "from mc_project import resources; print(resources.PACKAGE_DIR, resources.FROM_SOURCE)"],
                timeout=60)
    assert probe.returncode == 0, probe.stderr
    package_dir, from_source = probe.stdout.split()
    return package_dir, from_source == "True"


class Controller:
    def __init__(self, bin_dir, root):
        self.bin = bin_dir
        self.root = root
        self.publish_port, self.ret_port, self.dns_port = free_ports(3)

    def command(self, *args, **kwargs):
        return run([os.path.join(self.bin, args[0]), *args[1:]], **kwargs)

    def init(self, *extra):
        # The README's command; the DNS API and the mail relay are only recorded by init.
        env = dict(os.environ, CORPUS_DNS_KEY="s3cr3t-dns-key")
        return self.command(
            "corpus-controller", "init", "--root", self.root, "--domain", "apps.example.test",
            "--dns-api", "http://{}:{}".format(LOOPBACK, self.dns_port), "--smtp", LOOPBACK + ":25",
            "--interface", LOOPBACK, "--publish-port", str(self.publish_port),
            "--ret-port", str(self.ret_port), *extra, env=env, timeout=PIP_TIMEOUT)


@pytest.fixture(scope="module")
def controller(venv_bin, tmp_path_factory):
    # A short root: the master's unix sockets live under it.
    ctl = Controller(venv_bin, str(tmp_path_factory.mktemp("ctl")))
    started = time.monotonic()
    ctl.first = ctl.init()
    ctl.first_seconds = time.monotonic() - started
    yield ctl
    ctl.command("corpus-controller", "stop", "--root", ctl.root)


def corpus_wheel(wheels):
    names = [name for name in os.listdir(wheels) if name.startswith("corpus-") and name.endswith(".whl")]
    assert len(names) == 1, names
    return os.path.join(wheels, names[0])


def test_the_readme_install_is_not_a_checkout(venv_bin, tree):
    package_dir, from_source = corpus_files(venv_bin)
    assert not from_source
    assert not package_dir.startswith((REPO + os.sep, tree + os.sep))
    assert os.path.isfile(os.path.join(package_dir, "_data", "_runners", "mc_cloud.py"))


def test_init_builds_the_wheelhouse_from_the_installed_corpus_and_starts_a_master(controller):
    result = controller.first
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "salt-master: started" in result.stdout
    wheels = os.path.join(controller.root, "wheelhouse")
    assert "wheelhouse: {} (".format(wheels) in result.stdout
    with open(os.path.join(wheels, ".corpus-wheelhouse.json"), encoding="utf-8") as fh:
        stamp = json.load(fh)
    assert stamp["built"] == "all" and stamp["installed"] and stamp["source"] is None
    corpus_wheel(wheels)
    # The master runs corpus's runners, found through the installed entry point.
    answer = controller.command("salt-run", "-c", os.path.join(controller.root, "etc", "salt"),
                                "mc_jobs.status", "1")
    assert "No job 1 in the inventory." in answer.stdout, answer.stdout + answer.stderr
    status = controller.command("corpus-controller", "status", "--root", controller.root)
    assert status.returncode == 0 and "salt-master: running" in status.stdout, status.stdout
    print("corpus-controller init from a regular install: {:.1f}s".format(controller.first_seconds))


def test_a_second_init_finds_the_wheelhouse_current(controller):
    wheel = corpus_wheel(os.path.join(controller.root, "wheelhouse"))
    built = os.stat(wheel).st_mtime_ns
    result = controller.init()
    assert result.returncode == 0, result.stderr
    assert "(unchanged)" in result.stdout and "already running" in result.stdout
    assert os.stat(wheel).st_mtime_ns == built


def test_a_copied_wheelhouse_given_with_the_wheelhouse_option_is_current(controller, places):
    shared = os.path.join(places, "shared-wheelhouse")
    shutil.copytree(os.path.join(controller.root, "wheelhouse"), shared, copy_function=shutil.copy2)
    built = os.stat(corpus_wheel(shared)).st_mtime_ns
    result = controller.init("--wheelhouse", shared)
    assert result.returncode == 0, result.stderr
    assert "wheelhouse: {} (0.0s)".format(shared) in result.stdout
    assert os.stat(corpus_wheel(shared)).st_mtime_ns == built


def test_the_wheelhouse_installs_corpus_and_salt_with_no_index(controller, places, venv_bin):
    wheels = os.path.join(controller.root, "wheelhouse")
    node = os.path.join(places, "node-venv")
    made = run([os.path.join(venv_bin, "python"), "-m", "venv", node])
    assert made.returncode == 0, made.stderr
    install = run([os.path.join(node, "bin", "pip"), "install", "--quiet", "--no-index", "--find-links",
                   wheels, "corpus"], timeout=PIP_TIMEOUT)
    assert install.returncode == 0, install.stderr
    probe = run([os.path.join(node, "bin", "python"), "-c",
                 "import os, salt.version, sqlalchemy, psycopg2, paramiko; "
                 "from mc_project import resources; "
                 "hook = os.path.join(resources.hooks_dir(), 'pre-receive'); "
                 "print(salt.version.__version__, resources.FROM_SOURCE, "
                 "os.path.isfile(os.path.join(resources.resource_path('_pillar'), 'corpus_inventory.py')), "
                 "os.access(hook, os.X_OK))"], timeout=60)
    assert probe.stdout.split() == ["3008.3", "False", "True", "True"], probe.stderr
    assert os.path.exists(os.path.join(node, "bin", "corpus-controller"))


def test_stop(controller):
    result = controller.command("corpus-controller", "stop", "--root", controller.root)
    assert result.returncode == 0 and "salt-master: stopped" in result.stdout
    status = controller.command("corpus-controller", "status", "--root", controller.root)
    assert status.returncode == 1 and "salt-master: stopped" in status.stdout


# --------------------------------------------------------------------------- as a normal user

def runnable_by(user, python):
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return run([python, "-c", "import venv, ensurepip"], user=user, timeout=60).returncode == 0


@pytest.fixture(scope="module")
def unprivileged(places, tree, venv_bin):
    """``(user or None, bin directory)``: how to run corpus-controller as a normal user.

    As root that is ``nobody`` through runuser, with a virtualenv it can run: the
    test's own Python may sit under a directory only root can enter (/root).
    """
    if os.geteuid() != 0:
        return None, venv_bin
    if not shutil.which("runuser"):
        pytest.skip("runuser is missing: cannot run corpus-controller as a normal user")
    if runnable_by(UNPRIVILEGED, os.path.join(venv_bin, "python")):
        return UNPRIVILEGED, venv_bin
    minor = "python{}.{}".format(*sys.version_info[:2])
    for python in ("/usr/bin/" + minor, "/usr/local/bin/" + minor, "/usr/bin/python3"):
        if os.path.exists(python) and runnable_by(UNPRIVILEGED, python):
            return UNPRIVILEGED, make_venv(python, os.path.join(places, "venv-" + UNPRIVILEGED), tree)
    pytest.skip("no Python that {} can run (this one is under a directory only root can enter)".format(
        UNPRIVILEGED))


def unwritable_dir(places, name):
    """A directory the normal user cannot write: root's 0755 one, or the user's own 0555 one."""
    path = os.path.join(places, name)
    os.makedirs(path)
    os.chmod(path, 0o755 if os.geteuid() == 0 else 0o555)
    return path


def writable_dir(places, name, user):
    path = os.path.join(places, name)
    os.makedirs(path)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@pytest.mark.parametrize("case", ["root", "wheelhouse", "db"])
def test_a_path_a_normal_user_cannot_write_is_one_sentence_and_exit_2(unprivileged, places, case):
    user, bin_dir = unprivileged
    locked = unwritable_dir(places, "locked-" + case)
    if case == "root":
        root, extra, message = os.path.join(locked, "ctl"), [], "Cannot write the controller root"
    else:
        root = os.path.join(writable_dir(places, "own-" + case, user), "ctl")
        extra, message = {
            "wheelhouse": (["--wheelhouse", os.path.join(locked, "wheels")], "Cannot build the wheelhouse"),
            "db": (["--db", os.path.join(locked, "inventory.sqlite")], "Cannot write the inventory"),
        }[case]
    publish, ret = free_ports(2)
    result = run([os.path.join(bin_dir, "corpus-controller"), "init", "--root", root,
                  "--interface", LOOPBACK, "--publish-port", str(publish), "--ret-port", str(ret),
                  *extra], user=user, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message) and lines[0].endswith("."), result.stderr
    assert "{} is not writable by this user".format(locked) in lines[0]
    assert not os.path.exists(root) and os.listdir(locked) == []  # nothing written
