"""The project's bare repositories: what a branch holds, a commit's tree."""

import os

import git

from mc_project.errors import CorpusError
from mc_project.project import releases

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
