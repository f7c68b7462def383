"""The spare containers of a node: the next environments' containers, made before they are asked for.

A new container costs a copy of the golden image and a shift of every one of its inodes into
the container's own id range (``lxc.clone``: one to two seconds alone, tens of seconds when
eight are copied at once). The node keeps ``count`` such containers ready (the controller's
``corpus:lxc:spare``, 1 by default), stopped, with their SSH host keys, named ``corpus-spare``,
``corpus-spare-2``... ``clone`` renames one to the new environment's name (milliseconds) when it
was made from the current golden image with the disk size asked for, and then makes the
missing ones again in the background, one after another, at the lowest CPU and I/O priority
so the environments being set up keep the machine. Environments come in bursts: before each
spare, the background refill waits until none was taken for a few seconds and the CPUs are
less than half busy (for at most half a minute), so that a burst's copies and key making come
after it, not in it.

A spare is ready once its ``spare-ready`` file exists (written last, holding what it was made
from); one refill runs at a time per LXC path (``.corpus-spare-refill.lock``), and ``remove``
stops it and deletes the spares (when the node is unlinked).
"""

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil

from mc_project.common import processes
from mc_project.errors import CorpusError
from mc_project.node import images, inside, lxc, minion
from mc_project.node.shell import file_lock

SPARE_NAME = lxc.SPARE_NAME
READY_FILE = "spare-ready"
TAKE_LOCK = ".corpus-spare.lock"
REFILL_LOCK = ".corpus-spare-refill.lock"
REFILL_PID = ".corpus-spare.pid"
REFILL_LOG = ".corpus-spare.log"
# What identifies the refill process behind the pid file (a pid may be reused).
REFILL_MARKER = "mc_project.node.spares"
STOP_WAIT = 30
# When a background refill deems the node quiet (see wait_for_quiet).
SETTLE_SECONDS = 5
BUSY_PERCENT = 50
QUIET_WAIT = 30


def _path(lxc_path, name):
    return os.path.join(lxc_path, name)


def spare_names(count):
    """The names of a pool of ``count`` spares: ``corpus-spare``, ``corpus-spare-2``..."""
    return [SPARE_NAME] + ["{}-{}".format(SPARE_NAME, i) for i in range(2, int(count) + 1)] if count else []


def spares_present(lxc_path):
    """The spares (ready or not) under ``lxc_path``, by name."""
    try:
        listed = os.listdir(lxc_path)
    except FileNotFoundError:
        return []
    return sorted(name for name in listed if lxc.is_spare(name) and os.path.isdir(os.path.join(lxc_path, name)))


def _ready_path(lxc_path, spare=SPARE_NAME):
    return os.path.join(lxc.container_dir(spare, lxc_path), READY_FILE)


def _made_from(lxc_path, disk_size_mb, source=None):
    """What a spare fitting a clone of ``disk_size_mb`` (None: the image's size) from ``source``
    (None: the golden image; else a named image's file) is made from: this image (replaced
    whole when it changes) and that disk size."""
    golden = source or lxc.rootdev_path(lxc.GOLDEN_NAME, lxc_path)
    st = os.stat(golden)
    size = int(disk_size_mb) if disk_size_mb else images.image_size_mb(golden)
    made_from = {"golden": [st.st_ino, st.st_size, st.st_mtime_ns], "disk_size_mb": size}
    if source:
        made_from["source"] = source
    return json.dumps(made_from, sort_keys=True)


def _ready_for(lxc_path, spare, made_from):
    """Whether spare ``spare`` is ready and was made from ``made_from`` (``_made_from``)."""
    try:
        with open(_ready_path(lxc_path, spare), encoding="utf-8") as fh:
            return fh.read() == made_from
    except FileNotFoundError:
        return False


def _all_ready(lxc_path, count, disk_size_mb, source=None):
    made_from = _made_from(lxc_path, disk_size_mb, source)
    return all(_ready_for(lxc_path, spare, made_from) for spare in spare_names(count))


def take(name, lxc_path, disk_size_mb=None, source=None):
    """Make a ready spare container ``name`` (a rename); False when no ready spare made from
    ``source`` (None: the golden image) fits."""
    if os.path.lexists(lxc.container_dir(name, lxc_path)):
        return False  # lxc.clone says what to do about an existing container
    with file_lock(_path(lxc_path, TAKE_LOCK)):
        try:
            made_from = _made_from(lxc_path, disk_size_mb, source)
        except OSError:  # no such image: lxc.clone says so
            return False
        ready = [spare for spare in spares_present(lxc_path)
                 if _ready_for(lxc_path, spare, made_from)]
        if not ready:
            return False
        os.unlink(_ready_path(lxc_path, ready[0]))
        os.rename(lxc.container_dir(ready[0], lxc_path), lxc.container_dir(name, lxc_path))
        os.utime(_path(lxc_path, TAKE_LOCK))  # when the last spare was taken: wait_for_quiet
    lxc.write_config(name, lxc_path)
    return True


def clone(name, lxc_path, disk_size_mb=None, exist_ok=False, spare=1, source=None):
    """``lxc.clone`` from ``source`` (None: the golden image), from a spare when one made from
    it fits; then the missing spares of a pool of ``spare`` are made in the background from
    that same image (``spare`` 0 or False: neither)."""
    if lxc.is_spare(name):
        raise CorpusError("{} is a spare container's name.".format(name))
    spare = int(spare)
    if spare and take(name, lxc_path, disk_size_mb, source):
        rootdev = lxc.rootdev_path(name, lxc_path)
        result = {"name": name, "disk_size_mb": images.image_size_mb(rootdev),
                  "id_base": lxc.id_base(name, lxc_path), "changed": True, "spare": True}
    else:
        result = dict(lxc.clone(name, lxc_path, disk_size_mb, exist_ok=exist_ok, source=source), spare=False)
    if spare:
        refresh(lxc_path, disk_size_mb, source, count=spare)
    return result


@contextlib.contextmanager
def _refill_lock(lxc_path):
    """The refill lock if free (True), else False: a refill already runs."""
    with open(_path(lxc_path, REFILL_LOCK), "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _pid_recorded(lxc_path):
    """This process's pid in ``.corpus-spare.pid`` for the block (``remove`` stops it)."""
    pid_path = _path(lxc_path, REFILL_PID)
    with open(pid_path + ".part", "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    os.replace(pid_path + ".part", pid_path)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_path)


def refill(lxc_path, disk_size_mb=None, source=None, count=1, quiet=False):
    """Make the spares of a pool of ``count`` (from ``source``, None: the golden image) that are
    missing or were made from another image, one after another, unless another refill runs;
    says which ("made", "ready", "busy"). Spares beyond ``count`` that no longer fit go.
    ``quiet``: each spare is made once the node is quiet (``wait_for_quiet``)."""
    if not os.path.isfile(source or lxc.rootdev_path(lxc.GOLDEN_NAME, lxc_path)):
        return "no golden image" if source is None else "no image {}".format(source)
    with _refill_lock(lxc_path) as mine, _pid_recorded(lxc_path) if mine else contextlib.nullcontext():
        if not mine:
            return "busy"
        made_from = _made_from(lxc_path, disk_size_mb, source)
        wanted = spare_names(count)
        for extra in [name for name in spares_present(lxc_path) if name not in wanted]:
            if not _ready_for(lxc_path, extra, made_from):
                _destroy(lxc_path, extra)
        made = False
        for spare in wanted:
            if not _ready_for(lxc_path, spare, made_from):
                if quiet:
                    wait_for_quiet(lxc_path)
                _make(lxc_path, spare, disk_size_mb, source, made_from)
                made = True
    return "made" if made else "ready"


def wait_for_quiet(lxc_path, settle=SETTLE_SECONDS, busy=BUSY_PERCENT, most=QUIET_WAIT):
    """Wait until no spare was taken for ``settle`` seconds and the CPUs were less than
    ``busy`` percent busy over a second, or ``most`` seconds went by; whether it was quiet."""
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        try:
            since_taken = time.time() - os.stat(_path(lxc_path, TAKE_LOCK)).st_mtime
        except FileNotFoundError:
            since_taken = settle
        if since_taken < settle:
            time.sleep(max(0.0, min(settle - since_taken, deadline - time.monotonic())))
        elif psutil.cpu_percent(interval=1) < busy:
            return True
    return False


def _destroy(lxc_path, spare):
    with file_lock(_path(lxc_path, TAKE_LOCK)):  # a stale or half-made spare goes
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_ready_path(lxc_path, spare))
    lxc.destroy(spare, lxc_path)


def _make(lxc_path, spare, disk_size_mb, source, made_from):
    _destroy(lxc_path, spare)
    lxc.clone(spare, lxc_path, disk_size_mb, source=source)
    lxc.write_config(spare, lxc_path, autostart=False)  # a node's boot leaves it be
    # Its SSH host keys (-A makes the missing types) and its minion's key pair now: configuring
    # it for an environment (first_boot) then has none to make.
    import salt.crypt  # on the node, where Salt runs this

    private, public = salt.crypt.gen_keys(minion.KEY_SIZE)
    keys = {minion.PKI_DIR + "/minion.pem": (private, 0o400), minion.PKI_DIR + "/minion.pub": (public, 0o644)}
    inside.run(spare, lxc_path, "ssh-keygen -A && tar -x -C /", "Making the keys of a spare container",
               input=minion.files_tar(keys), text=False)
    ready = _ready_path(lxc_path, spare)
    with open(ready + ".part", "w", encoding="utf-8") as fh:
        fh.write(made_from)
    os.replace(ready + ".part", ready)


def refresh(lxc_path, disk_size_mb=None, source=None, count=1):
    """Start a refill of a pool of ``count`` in the background unless all its spares are ready
    or one is being made (after a clone took a spare, or the golden image changed); its pid,
    or None."""
    try:
        if _all_ready(lxc_path, count, disk_size_mb, source):
            return None
    except OSError:
        return None  # no golden image yet
    with _refill_lock(lxc_path) as free:
        if not free:
            return None
    return refill_in_background(lxc_path, disk_size_mb, source, count)


def refill_in_background(lxc_path, disk_size_mb=None, source=None, count=1):
    """Start ``refill`` in a process of its own (it outlives the caller); returns its pid."""
    log_path = _path(lxc_path, REFILL_LOG)
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", REFILL_MARKER, lxc_path, str(int(count)), str(int(disk_size_mb or 0))]
            + ([source] if source else []),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            close_fds=True)
    # Reaped when it ends: a node's minion runs calls in threads and lives on, and an unreaped
    # refill would stay a zombie in its process table.
    threading.Thread(target=child.wait, name="corpus-spares-reaper", daemon=True).start()
    return child.pid


def remove(lxc_path):
    """Stop a running refill and delete the spare and its files; what was removed."""
    removed = []
    refill_process = processes.running_process(_path(lxc_path, REFILL_PID), REFILL_MARKER)
    if refill_process is not None:
        if not processes.stop(refill_process, STOP_WAIT):
            raise CorpusError("The refill of spare containers (pid {}) did not stop.".format(refill_process.pid))
        removed.append("refill process {}".format(refill_process.pid))
    for spare in spares_present(lxc_path):
        if lxc.destroy(spare, lxc_path)["destroyed"]:
            removed.append("container {}".format(spare))
    for name in (TAKE_LOCK, REFILL_LOCK, REFILL_PID, REFILL_LOG):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_path(lxc_path, name))
    return removed


def _stop_on_term(_signum, _frame):
    raise SystemExit(1)  # unwinds: a mounted image is unmounted, a half copy removed


def main(argv):
    lxc_path, count, disk_size_mb = argv[0], int(argv[1]), int(argv[2]) or None
    source = argv[3] if len(argv) > 3 else None
    signal.signal(signal.SIGTERM, _stop_on_term)
    # The CPU only when nothing else wants it (its copies and key making inherit this).
    os.nice(19)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(psutil.Error, AttributeError):
        psutil.Process().ionice(psutil.IOPRIO_CLASS_IDLE)
    try:
        print("spare containers in {}: {}".format(
            lxc_path, refill(lxc_path, disk_size_mb, source, count, quiet=True)), flush=True)
    except (CorpusError, OSError) as exc:
        print("spare containers in {} not made: {}".format(lxc_path, exc), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
