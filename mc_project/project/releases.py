"""The release store: immutable ``releases/<id>``, the ``current`` link, data snapshots.

Releases are made with ``rsync --link-dest`` against the previous release, so a file
that did not change is a hard link and ten releases cost little more than one. Data
snapshots are real copies (``cp --reflink=auto``): they never share an inode with
the live ``data/``, so a later write to ``data/`` cannot change a snapshot.
"""

import os
import shutil
import socket
import stat
import subprocess
import tarfile
import time

from mc_project.errors import CorpusError

SNAPSHOT_ATTEMPTS = 5
# What cp says when the live app renames or replaces a file while it is copied.
LIVE_CHANGES = ("No such file or directory", "replaced while being copied")


def new_release_id(releases_dir, commit, taken=()):
    """A sortable, unique id: UTC time plus the short commit, unused by a release dir and by
    ``taken`` (the ids the history holds: an editable deploy makes no release dir)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    base = "{}-{}".format(stamp, (commit or "nocommit")[:8])
    candidate, n = base, 1
    while candidate in taken or os.path.exists(os.path.join(releases_dir, candidate)):
        n += 1
        candidate = "{}.{}".format(base, n)
    return candidate


def _run(cmd, what):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode:
        lines = proc.stdout.strip().splitlines() or ["exit {}".format(proc.returncode)]
        # rsync and cp end with a summary line; the cause (a full disk) comes before it.
        cause = next((line for line in lines if "No space left" in line or "quota" in line), lines[-1])
        raise CorpusError("{} failed: {}".format(what, cause))
    return proc.stdout


def extract_tar(tar_path, dest):
    """Unpack a tar (git archive, bundle) into ``dest``, refusing members that would
    land outside it."""
    os.makedirs(dest, exist_ok=True)
    try:
        with tarfile.open(tar_path) as tar:
            if hasattr(tarfile, "tar_filter"):  # Python >= 3.11.4 checks members itself
                tar.extractall(dest, filter="tar")
            else:
                root = os.path.realpath(dest)
                for member in tar.getmembers():
                    target = os.path.realpath(os.path.join(dest, member.name))
                    if target != root and not target.startswith(root + os.sep):
                        raise CorpusError("{} holds {}, outside the tree.".format(tar_path, member.name))
                tar.extractall(dest)
    except (tarfile.TarError, OSError) as exc:
        raise CorpusError("Cannot unpack {}: {}.".format(tar_path, exc)) from None


def sync_tree(src, dest, link_dest=None, delete=True, keep=(), read_only=False, private=False, exclude=(),
              files_from=None):
    """Copy ``src``/ onto ``dest``/ with rsync; unchanged files become hard links to
    ``link_dest`` (a dir, or dirs tried in order) when given. ``keep`` names paths
    that ``--delete`` must spare.
    ``read_only`` makes every file read-only (a release's files are shared, as hard
    links, with the releases before it: nobody may write them in place). ``private``
    gives every directory 0700 and every file 0600, as they land (secrets).
    ``files_from`` limits the copy to those relative paths (a NUL-separated list file)."""
    os.makedirs(dest, exist_ok=True)
    # Compare by content: size + mtime misses a same-size change made in the same second
    # (a tar stamps every file with its commit's time; npm's with 1985).
    cmd = ["rsync", "-a", "--no-inc-recursive", "--checksum"]
    if files_from:
        cmd.extend(["--from0", "--files-from={}".format(files_from)])
    if delete:
        cmd.append("--delete")
    if read_only:
        cmd.append("--chmod=Fa-w,Dgo-w")
    if private:
        cmd.append("--chmod=D700,F600")
    for pattern in keep:
        cmd.extend(["--filter", "P /{}".format(pattern.strip("/"))])
    for pattern in exclude:
        cmd.append("--exclude=/{}".format(pattern.strip("/")))
    link_dests = [d for d in ([link_dest] if isinstance(link_dest, str) else link_dest or ())
                  if d and os.path.isdir(d)]
    if link_dests:
        # rsync links only files whose kept attributes match: an unchanged file of a
        # new commit has a new mtime, so times are not kept for a linked release.
        cmd.append("--no-times")
        cmd.extend("--link-dest={}".format(os.path.abspath(d)) for d in link_dests)
    cmd.extend([src.rstrip("/") + "/", dest.rstrip("/") + "/"])
    _run(cmd, "Copying {} to {}".format(src, dest))


# Dependency trees (see deps.py) are hard links of a content-addressed cache already:
# a release links them as they are instead of comparing thousands of files.
LINKED_TREES = (".venv", "node_modules")


def hard_link_copy(src, dest):
    """``dest`` (which must not exist) becomes a tree of hard links to ``src``'s files
    (``cp -al``; ``src`` may be a link to the tree)."""
    _run(["cp", "-al", os.path.realpath(src), dest], "Linking {}".format(src))


def link_tree(src, dest):
    """``dest`` becomes hard links of ``src``'s files, every file read-only."""
    hard_link_copy(src, dest)
    for dirpath, dirnames, filenames in os.walk(dest):
        os.chmod(dirpath, os.stat(dirpath).st_mode & ~0o022)
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode) and mode & 0o222:
                os.chmod(path, mode & ~0o222)


def make_release(build_dir, release_dir, previous_release=None, checkout=None):
    """Create the immutable release from the build tree.

    A file the build left as it came from ``checkout`` (the same inode), with the size
    and modification time of the previous release's file, is that file: git wrote it
    once, with the time of the write, and has not rewritten it since. Such files become
    links of the previous release without being read; rsync compares the rest (what
    the build wrote, what the push changed) by content, and a release file that came
    from the checkout takes its time, for the next release to compare."""
    tmp = release_dir + ".partial"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    try:
        unchanged, from_checkout, others = _split_by_checkout(build_dir, previous_release, checkout)
        listing = tmp + ".files"
        with open(listing, "wb") as fh:
            fh.write(b"".join(os.fsencode(rel) + b"\0" for rel in from_checkout + others))
        try:
            # The build tree comes second: a final target's is made of read-only hard
            # links to the bundle's objects, which the release then shares too.
            sync_tree(build_dir, tmp, link_dest=[previous_release, build_dir], read_only=True,
                      delete=False, files_from=listing)
        finally:
            os.unlink(listing)
        os.chmod(tmp, stat.S_IMODE(os.stat(build_dir).st_mode) & ~0o022)  # what Dgo-w gives the others
        for rel in unchanged:
            os.link(os.path.join(previous_release, rel), os.path.join(tmp, rel))
        for rel in from_checkout:
            st = os.lstat(os.path.join(build_dir, rel))
            os.utime(os.path.join(tmp, rel), ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        for name in LINKED_TREES:
            if os.path.isdir(os.path.join(build_dir, name)):
                link_tree(os.path.join(build_dir, name), os.path.join(tmp, name))
        os.rename(tmp, release_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return release_dir


def _split_by_checkout(build_dir, previous_release, checkout):
    """The build tree's paths, LINKED_TREES left out, in three lists: files to link from
    the previous release as they are; other files as git wrote them into the checkout;
    everything else (what the build made, directories, symbolic links)."""
    unchanged, from_checkout, others = [], [], []
    for dirpath, dirnames, filenames in os.walk(build_dir):
        rel_dir = os.path.relpath(dirpath, build_dir)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in LINKED_TREES]
            filenames = [f for f in filenames if f not in LINKED_TREES]
        else:
            others.append(rel_dir)
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                others.append(os.path.normpath(os.path.join(rel_dir, name)))
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(os.path.join(build_dir, rel))
            checkout_st = _lstat(os.path.join(checkout, rel)) if checkout else None
            if (not stat.S_ISREG(st.st_mode) or checkout_st is None
                    or (st.st_ino, st.st_dev) != (checkout_st.st_ino, checkout_st.st_dev)):
                others.append(rel)
            elif _same_as_before(st, _lstat(os.path.join(previous_release, rel)) if previous_release else None):
                unchanged.append(rel)
            else:
                from_checkout.append(rel)
    return unchanged, from_checkout, others


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _same_as_before(st, previous):
    return (previous is not None and stat.S_ISREG(previous.st_mode)
            and st.st_size == previous.st_size and st.st_mtime_ns == previous.st_mtime_ns
            and stat.S_IMODE(st.st_mode) & ~0o222 == stat.S_IMODE(previous.st_mode)
            and (st.st_uid, st.st_gid) == (previous.st_uid, previous.st_gid))


def live_target(current):
    """Absolute path ``current`` points to, or None when nothing is live."""
    if not os.path.islink(current):
        return None
    return os.path.realpath(current)


def live_release_id(current, releases_dir):
    """Id of the live release, or None (also None in editable mode)."""
    target = live_target(current)
    if target and os.path.dirname(target) == os.path.realpath(releases_dir):
        return os.path.basename(target)
    return None


def switch_current(current, target):
    """Point ``current`` at ``target`` atomically: a new link renamed over the old one.

    ``target`` None removes ``current`` (nothing was live before)."""
    if target is None:
        if os.path.islink(current):
            os.unlink(current)
        return
    rel = os.path.relpath(target, os.path.dirname(current))
    tmp = "{}.new-{}-{}".format(current, socket.gethostname(), os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(rel, tmp)
    os.replace(tmp, current)


def set_aside(path, failed_dir, release_id, log_text):
    """Move a failed release (or build) to ``archives/failed/<id>/`` with its log."""
    dest = os.path.join(failed_dir, release_id)
    os.makedirs(dest, exist_ok=True)
    if path and os.path.isdir(path):
        tree = os.path.join(dest, "tree")
        if os.path.exists(tree):
            shutil.rmtree(tree)
        os.rename(path, tree)
    with open(os.path.join(dest, "deploy.log"), "w", encoding="utf-8") as fh:
        fh.write(log_text)
    return dest


def prune_dir(parent, keep_names):
    """Remove every entry of ``parent`` not in ``keep_names``; returns what went."""
    removed = []
    if not os.path.isdir(parent):
        return removed
    for entry in sorted(os.listdir(parent)):
        if entry in keep_names:
            continue
        path = os.path.join(parent, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
        removed.append(entry)
    return removed


def snapshot_data(data_dir, snapshot_dir, exclude=()):
    """Copy ``data/`` into ``<snapshot_dir>/data`` (fresh inodes, reflinks where possible),
    leaving out the top-level names in ``exclude`` (a database dumped on its own).

    The live app keeps writing meanwhile: a file that vanishes or is replaced during the
    copy (an app's temporary file renamed over another) makes ``cp`` fail, and the copy is
    simply made again."""
    os.makedirs(snapshot_dir, exist_ok=True)
    dest = os.path.join(snapshot_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
        if os.path.exists(dest):
            shutil.rmtree(dest)
        try:
            if exclude:
                _copy_entries(data_dir, dest, exclude)
            else:
                _run(["cp", "-a", "--reflink=auto", data_dir.rstrip("/"), dest],
                     "Snapshotting {}".format(data_dir))
            return dest
        except CorpusError as exc:
            if attempt < SNAPSHOT_ATTEMPTS and any(text in str(exc) for text in LIVE_CHANGES):
                continue
            shutil.rmtree(snapshot_dir, ignore_errors=True)
            raise
        except BaseException:
            shutil.rmtree(snapshot_dir, ignore_errors=True)
            raise
    return dest


def _copy_entries(data_dir, dest, exclude):
    """``cp -a`` of ``data_dir`` as ``dest`` without the top-level names in ``exclude``."""
    os.makedirs(dest)
    st = os.stat(data_dir)
    shutil.copystat(data_dir, dest)
    if os.geteuid() == 0:
        os.chown(dest, st.st_uid, st.st_gid)
    entries = [os.path.join(data_dir, name) for name in sorted(os.listdir(data_dir))
               if name not in exclude]
    if entries:
        _run(["cp", "-a", "--reflink=auto", "-t", dest] + entries, "Snapshotting {}".format(data_dir))


def restore_data(snapshot_dir, data_dir, before_swap=None):
    """Make ``data/`` again what ``<snapshot_dir>/data`` holds, swapping by rename;
    ``before_swap(incoming_dir)`` may add to it first (a database restored from its dump)."""
    source = os.path.join(snapshot_dir, "data")
    if not os.path.isdir(source):
        raise CorpusError("No data snapshot in {}.".format(snapshot_dir))
    incoming = data_dir.rstrip("/") + ".restoring"
    outgoing = data_dir.rstrip("/") + ".replaced"
    for path in (incoming, outgoing):
        if os.path.exists(path):
            shutil.rmtree(path)
    try:
        _run(["cp", "-a", "--reflink=auto", source, incoming], "Restoring {}".format(data_dir))
        if before_swap:
            before_swap(incoming)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    if os.path.exists(data_dir):
        os.rename(data_dir, outgoing)
    os.rename(incoming, data_dir)
    shutil.rmtree(outgoing, ignore_errors=True)


def tree_signature(path):
    """What changes when anything under ``path`` is written, added or removed."""
    sig = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames) + dirnames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            sig.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns, st.st_mode, st.st_ino))
    return sig
