"""The kept checkout and the releases made from it: a push writes, and a release reads,
only what changed."""

import os
import subprocess

import pytest

from mc_project.errors import CorpusError
from mc_project.project import gitrepo, releases


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A work tree to commit in and the bare repository it pushes to."""
    src, bare = tmp_path / "src", tmp_path / "project.git"
    git(tmp_path, "init", "-q", "-b", "main", str(src))
    git(tmp_path, "init", "-q", "--bare", str(bare))

    def commit(files, push=True):
        for rel, text in files.items():
            path = src / rel
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(src, "add", "-A")
        git(src, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
        if push:
            git(src, "push", "-q", str(bare), "HEAD:main")
        return git(src, "rev-parse", "HEAD")

    return bare, commit


def test_update_checkout_rewrites_only_what_changed(tmp_path, repo):
    bare, commit = repo
    checkout = str(tmp_path / "cache" / "checkout")
    first = commit({"same.txt": "same", "sub/old.txt": "old", "changed.txt": "v1"})
    assert gitrepo.update_checkout(str(bare), first, checkout) == first
    before = {rel: os.stat(os.path.join(checkout, rel)) for rel in ("same.txt", "changed.txt")}
    # What a build or a crash may leave: a stray file, a file changed in place.
    (tmp_path / "cache" / "checkout" / "stray.pyc").write_text("x")
    (tmp_path / "cache" / "checkout" / "sub" / "old.txt").write_text("edited")

    second = commit({"changed.txt": "v2", "sub/old.txt": None, "new.txt": "new"})
    gitrepo.update_checkout(str(bare), second, checkout)
    files = sorted(os.path.relpath(os.path.join(d, f), checkout) for d, _, fs in os.walk(checkout) for f in fs)
    assert files == ["changed.txt", "new.txt", "same.txt"]
    same = os.stat(os.path.join(checkout, "same.txt"))
    assert (same.st_ino, same.st_mtime_ns) == (before["same.txt"].st_ino, before["same.txt"].st_mtime_ns)
    assert os.stat(os.path.join(checkout, "changed.txt")).st_mtime_ns != before["changed.txt"].st_mtime_ns
    assert open(os.path.join(checkout, "changed.txt")).read() == "v2"

    gitrepo.update_checkout(str(bare), first, checkout)  # back, as a rollback's redeploy does
    assert open(os.path.join(checkout, "sub", "old.txt")).read() == "old"


def test_update_checkout_recovers_from_an_update_killed_half_way(tmp_path, repo):
    bare, commit = repo
    checkout = str(tmp_path / "checkout")
    sha = commit({"a.txt": "a"})
    gitrepo.update_checkout(str(bare), sha, checkout)
    open(checkout + ".index.lock", "w").close()
    with open(checkout + ".index", "wb") as fh:
        fh.write(b"garbage")
    gitrepo.update_checkout(str(bare), sha, checkout)
    assert open(os.path.join(checkout, "a.txt")).read() == "a"
    assert not os.path.exists(checkout + ".index.lock")


def test_update_checkout_reads_a_push_in_quarantine(tmp_path, repo):
    bare, commit = repo
    first = commit({"a.txt": "a"})
    # The second commit's objects are only in another object directory, as a push's
    # are before it is accepted.
    second = commit({"a.txt": "b"}, push=False)
    quarantine = tmp_path / "project.git" / "objects" / "incoming-test"
    (quarantine / "pack").mkdir(parents=True)
    subprocess.run(["git", "pack-objects", "-q", "--revs", str(quarantine / "pack" / "pack")],
                   input="{}\n^{}\n".format(second, first), text=True, cwd=tmp_path / "src",
                   check=True, capture_output=True)
    checkout = str(tmp_path / "checkout")
    with pytest.raises(CorpusError, match="is not in"):
        gitrepo.update_checkout(str(bare), second, checkout)
    assert gitrepo.update_checkout(str(bare), second, checkout, objects=str(quarantine)) == second
    assert open(os.path.join(checkout, "a.txt")).read() == "b"


def test_a_release_links_untouched_checkout_files_and_compares_the_rest(tmp_path, repo):
    bare, commit = repo
    checkout, rel_dir = str(tmp_path / "checkout"), tmp_path / "releases"
    rel_dir.mkdir()
    r1, r2 = str(rel_dir / "r1"), str(rel_dir / "r2")

    def build(sha, name, outputs):
        gitrepo.update_checkout(str(bare), sha, checkout)
        build_dir = str(tmp_path / "build" / name)
        os.makedirs(os.path.dirname(build_dir), exist_ok=True)
        releases.hard_link_copy(checkout, build_dir)
        for rel, (text, mtime_ns) in outputs.items():
            path = os.path.join(build_dir, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.exists(path):
                os.unlink(path)
            with open(path, "w") as fh:
                fh.write(text)
            os.utime(path, ns=(mtime_ns, mtime_ns))
        return build_dir

    npm_time = 499162500 * 10**9  # what npm stamps every file of a package with
    b1 = build(commit({"same.txt": "same", "code.js": "v=1", "inplace.txt": "aaaa"}),
               "b1", {"static/lib.js": ("ver=1", npm_time)})
    releases.make_release(b1, r1, checkout=checkout)
    b2 = build(commit({"code.js": "v=2"}), "b2", {"static/lib.js": ("ver=2", npm_time)})
    with open(os.path.join(b2, "inplace.txt"), "r+") as fh:  # a build writing a source file in place
        fh.write("bbbb")
    releases.make_release(b2, r2, previous_release=r1, checkout=checkout)

    def ino(root, rel):
        return os.stat(os.path.join(root, rel)).st_ino

    assert ino(r2, "same.txt") == ino(r1, "same.txt")
    for rel, text in (("code.js", "v=2"), ("static/lib.js", "ver=2"), ("inplace.txt", "bbbb")):
        assert open(os.path.join(r2, rel)).read() == text
        assert ino(r2, rel) != ino(r1, rel)
    assert open(os.path.join(r1, "inplace.txt")).read() == "aaaa"
    assert os.stat(os.path.join(r2, "code.js")).st_mtime_ns == os.stat(os.path.join(checkout, "code.js")).st_mtime_ns
    assert not os.stat(os.path.join(r2, "same.txt")).st_mode & 0o222
