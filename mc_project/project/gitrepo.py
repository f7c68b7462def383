"""The project's bare repositories: what a branch holds, a commit's tree."""

import errno
import os
import shutil
import time

import git

from mc_project.errors import CorpusError
from mc_project.project import diskfull, releases

ZERO = "0" * 40


def branch_head(git_dir, branch):
    """Commit the branch points to in a bare repo, or None."""
    try:
        return git.Repo(git_dir).git.rev_parse("--verify", "-q", "refs/heads/" + branch)
    except git.GitCommandError:
        return None


def has_commit(git_dir, commit):
    try:
        git.Repo(git_dir).git.cat_file("-e", commit + "^{commit}")
    except git.GitCommandError:
        return False
    return True


def export_tree(git_dir, commit, dest):
    """Write the tree of ``commit`` into ``dest`` (``git archive``); returns its full sha."""
    os.makedirs(dest, exist_ok=True)
    repo = git.Repo(git_dir)
    try:
        sha = repo.git.rev_parse("--verify", "-q", commit + "^{commit}")
    except git.GitCommandError:
        raise CorpusError("Commit {} is not in {}.".format(commit, git_dir)) from None
    tar_path = os.path.join(dest, ".corpus-src.tar")
    with open(tar_path, "wb") as fh:
        repo.archive(fh, sha, format="tar")
    releases.extract_tar(tar_path, dest)
    os.unlink(tar_path)
    return sha


def update_checkout(git_dir, commit, worktree, objects=None):
    """Make ``worktree`` hold exactly the tree of ``commit``, writing only the files that
    differ from what it held: git's index beside it (``<worktree>.index``) remembers what
    was written, so a 1-file change of a 1 GB project writes one file. Anything else in
    the tree is removed. ``objects`` is a push's quarantine object directory (the pushed
    objects are there until the push is accepted). Returns the commit's full sha."""
    repo = git.Repo(git_dir)
    env = {}
    if objects:
        env.update(GIT_OBJECT_DIRECTORY=os.path.abspath(objects),
                   GIT_ALTERNATE_OBJECT_DIRECTORIES=os.path.join(os.path.abspath(git_dir), "objects"))
    with repo.git.custom_environment(**env):
        try:
            sha = repo.git.rev_parse("--verify", "-q", commit + "^{commit}")
        except git.GitCommandError:
            raise CorpusError("Commit {} is not in {}.".format(commit, git_dir)) from None
    index = os.path.abspath(worktree) + ".index"
    # The build gets hard links of the checkout, and a link changes a file's ctime:
    # git must judge a file by its size and mtime only, or it reads every file again.
    env.update(GIT_WORK_TREE=os.path.abspath(worktree), GIT_INDEX_FILE=index, GIT_CONFIG_COUNT="1",
               GIT_CONFIG_KEY_0="core.trustctime", GIT_CONFIG_VALUE_0="false")
    fresh = not os.path.exists(index)
    os.makedirs(worktree, exist_ok=True)  # git refuses a work tree that does not exist
    with repo.git.custom_environment(**env):
        try:
            _reset_worktree(repo, sha)
        except git.GitCommandError:
            # An update killed half way (a stale index.lock, a damaged index): start afresh.
            shutil.rmtree(worktree)
            for leftover in (index, index + ".lock"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            os.makedirs(worktree)
            try:
                _reset_worktree(repo, sha)
            except git.GitCommandError as exc:
                if diskfull.no_room(worktree):
                    raise OSError(errno.ENOSPC, "No space left on device", worktree) from None
                lines = [line.strip(" '") for line in str(exc.stderr).splitlines() if line.strip(" '")]
                raise CorpusError("Checking out {} into {} failed: {}".format(
                    sha[:12], worktree, lines[-1] if lines else "git exited {}".format(exc.status))) from None
            fresh = True
        if fresh:
            _settle_index(repo)
    return sha


def _reset_worktree(repo, sha):
    """``git reset --hard`` of the private index and work tree, then ``git clean``."""
    repo.git.read_tree("--reset", "-u", sha)
    repo.git.clean("-ffdxq")


def _settle_index(repo):
    """After a whole tree was written: git cannot trust the times of files written in
    the second its index was (they are "racily clean") and would read every one of them
    at the next update. Refreshed a second later, the index trusts them: the first
    deploy pays that read, not the next."""
    time.sleep(1.0 - time.time() % 1.0 + 0.01)
    repo.git.update_index("-q", "--refresh")
