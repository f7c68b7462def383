"""A full filesystem during a deploy: one sentence, everything put back, then it works.

The projects root is a small tmpfs. A commit carrying an incompressible file fits in
git but not in the build, the release or the bundle (how much room is left decides
which): the push fails with one sentence naming the filesystem, the live release keeps
answering, no record is left running and no partial file is left; once space is back
the next push goes live.
"""

import os
import subprocess

import pytest

from support.corpus import Corpus
from support.git import head

pytestmark = pytest.mark.needs("root")  # to mount a small tmpfs

MIB = 1 << 20


@pytest.fixture
def small_fs_corpus(tmp_path, salt_local):
    mount = tmp_path / "projects"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=755", "tmpfs", str(mount)], check=True)
    corpus = Corpus(tmp_path, salt_local)
    try:
        yield corpus, str(mount)
    finally:
        corpus.stop_all()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path, leave):
    """Write a file that leaves about ``leave`` bytes free on ``path``'s filesystem."""
    filler = os.path.join(path, "filler")
    st = os.statvfs(path)
    size = max(st.f_bavail * st.f_frsize - leave, 0)
    with open(filler, "wb") as fh:
        fh.truncate(0)
        chunk = b"\1" * MIB
        while size > 0:
            try:
                fh.write(chunk[:min(size, MIB)])
                fh.flush()
            except OSError:
                break
            size -= MIB
    return filler


@pytest.mark.parametrize("leave_mib", [3, 4, 5])
def test_a_full_disk_fails_cleanly_and_the_next_push_works(small_fs_corpus, leave_mib):
    corpus, mount = small_fs_corpus
    paths = corpus.init("full", env="staging")
    src = corpus.source("wsgi-app", name="full")
    first = corpus.push(src, "full")
    assert first.returncode == 0, first.stderr
    good = head(src)

    corpus.commit(src, {"blob.bin": os.urandom(2 * MIB).hex()[: 2 * MIB], "VERSION": "2\n"}, "big")
    filler = fill(mount, leave_mib * MIB)
    proc = corpus.push(src, "full")
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "The filesystem {} holding {} is full".format(mount, paths["root"]) in proc.stderr, proc.stderr
    assert head(paths["project_git"], "refs/heads/main") == good
    status, body = corpus.get("full")
    assert status == 200 and '"version": "1"' in body
    records = corpus.history("full")
    assert not [r for r in records if r["status"] == "running"], records
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(paths["root"]) for f in files
                 if ".partial" in f or ".tmp" in f]
    assert leftovers == []
    assert os.listdir(paths["build"]) == []

    os.unlink(filler)
    nxt = corpus.push(src, "full")
    assert nxt.returncode == 0, nxt.stderr
    status, body = corpus.get("full")
    assert status == 200 and '"version": "2"' in body
    assert os.path.exists(os.path.join(paths["root"], ".space-reserve"))
