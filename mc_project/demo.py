"""``make demo``: corpus end to end on this machine, no server needed, no root needed.

It sets up a masterless Salt under ``.demo/`` (or ``$CORPUS_DEMO_DIR``), creates the
project ``demo`` (env staging: cooking mode), pushes ``examples/wsgi-app``, shows it
live, pushes a second version, then pushes a commit whose build fails and shows that
the push is refused and the previous release is still live.
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.request

from rich.console import Console

from mc_project import localsalt
from mc_project.project import settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "demo"
GIT_ENV = {"GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@localhost",
           "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@localhost"}


# Bold on a terminal, plain text in a file or a pipe.
console = Console(highlight=False)


def say(text):
    console.print("\n==> {}".format(text), style="bold", markup=False)


def run(cmd, cwd=None, check=True):
    """Run a command with its output going to the terminal; returns its exit code."""
    print("$ " + " ".join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=cwd, env=dict(os.environ, **GIT_ENV))
    if check and code:
        sys.exit("demo: '{}' failed with exit code {}".format(" ".join(cmd), code))
    return code


def salt_call(conf_dir, *args):
    exe = os.path.join(os.path.dirname(sys.executable), "salt-call")
    proc = subprocess.run([exe, "-c", conf_dir, "--local", "--out=json"] + list(args),
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit("demo: salt-call {} failed: {}".format(" ".join(args), proc.stderr.strip()))
    return json.loads(proc.stdout)["local"]


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode().strip()


def main():
    base = os.path.abspath(os.environ.get("CORPUS_DEMO_DIR", os.path.join(REPO, ".demo")))
    root = os.path.join(base, "projects")
    conf_dir = os.path.join(base, "salt", "etc", "salt")
    if os.path.exists(os.path.join(conf_dir, "minion")):
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "salt-call"), "-c", conf_dir,
                        "--local", "mc_project.stop", NAME], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)

    say("A masterless Salt under {} (project {} in env staging: cooking mode)".format(base, NAME))
    localsalt.write_minion_config(os.path.join(base, "salt"), projects_root=root,
                                  pillar={"makina-projects": {NAME: {"env": "staging"}}})
    changes = salt_call(conf_dir, "mc_project.init_project", NAME)
    print("created {} paths; push remote: {}".format(
        len(changes), settings.project_paths(root, NAME)["project_git"]))

    remote = settings.project_paths(root, NAME)["project_git"]
    src = os.path.join(base, "src")
    shutil.copytree(os.path.join(REPO, "examples", "wsgi-app"), src)
    run(["git", "init", "-q", "-b", "main"], cwd=src)
    run(["git", "add", "-A"], cwd=src)
    run(["git", "commit", "-qm", "wsgi-app version 1"], cwd=src)

    say("git push: version 1")
    run(["git", "push", remote, "main"], cwd=src)
    url = salt_call(conf_dir, "mc_project.status", NAME)["url"]
    print("{} answers: {}".format(url, fetch(url)))

    say("git push: version 2")
    with open(os.path.join(src, "VERSION"), "w") as fh:
        fh.write("2\n")
    run(["git", "commit", "-qam", "version 2"], cwd=src)
    run(["git", "push", remote, "main"], cwd=src)
    print("{} answers: {}".format(url, fetch(url)))

    say("git push: a commit whose build fails (examples/broken-build)")
    shutil.copytree(os.path.join(REPO, "examples", "broken-build", ".salt"),
                    os.path.join(src, ".salt"), dirs_exist_ok=True)
    run(["git", "add", "-A"], cwd=src)
    run(["git", "commit", "-qm", "broken build"], cwd=src)
    code = run(["git", "push", remote, "main"], cwd=src, check=False)
    print("git push exited {}: the push was refused and rolled back".format(code))
    if code == 0:
        sys.exit("demo: the broken push was accepted, which it must not be")
    print("{} still answers: {}".format(url, fetch(url)))

    say("Release history (salt-call mc_project.releases {})".format(NAME))
    for rel in salt_call(conf_dir, "mc_project.releases", NAME):
        print("  {}  commit {:.12}  {}  {}  {}{}".format(
            rel["id"], rel["commit"] or "", rel["mode"], rel["status"], rel["time"],
            "  <- live" if rel["live"] else ""))
    history = json.load(open(settings.project_paths(root, NAME)["history"]))
    failed = history[-1]
    print("  last deploy: {} {} in phase {} at {} (set aside in {})".format(
        failed["id"], failed["status"], failed.get("failed_phase"), failed.get("ended"),
        os.path.relpath(failed.get("failed_dir", ""), base)))

    say("Done")
    print("The app keeps running at {}.".format(url))
    print("Try: .venv/bin/salt-call -c {} --local mc_project.status {}".format(conf_dir, NAME))
    print("     .venv/bin/salt-call -c {} --local mc_project.rollback {}".format(conf_dir, NAME))
    print("Stop it: .venv/bin/salt-call -c {} --local mc_project.stop {}".format(conf_dir, NAME))


if __name__ == "__main__":
    main()
