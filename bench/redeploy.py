"""(r) Redeploy of an environment: ``salt-run mc_cloud.redeploy`` on a real controller and node
(this machine, set up as for (e)), the environment running examples/wsgi-app (pushed over
SSH), with the time of each step from ``mc_jobs.status`` and a request loop through the
node's proxy during the whole redeploy (requests, failed), against ``init_env`` of the same
environment (the container made from nothing) as the baseline.
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from controller import BenchController, missing_requirements, warm_golden
from harness import REPO_ROOT, BenchError, fmt_ratio, fmt_seconds, git, ratio, table

NAME = "bench-r"
EXAMPLE = os.path.join(REPO_ROOT, "examples", "wsgi-app")


def job_steps(ctl, name, kind):
    """[(step, seconds)] of ``name``'s newest ``kind`` job."""
    for job in ctl.run("mc_jobs.status", name).data or []:
        if isinstance(job, dict) and job.get("kind") == kind:
            return [(step["name"], step["seconds"] or 0) for step in job["steps"]]
    raise BenchError("mc_jobs.status {} shows no {} job".format(name, kind))


def push_app(ctl, access, workdir):
    """examples/wsgi-app pushed to the environment over its NATed SSH port."""
    creds = ctl.run("mc_cloud.credentials", NAME).data
    key = os.path.join(workdir, "key")
    with open(key, "w", encoding="ascii") as fh:
        fh.write(creds["ssh_private_key"])
    os.chmod(key, 0o600)
    src = os.path.join(workdir, "src")
    shutil.copytree(EXAMPLE, src)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "bench")
    remote = "ssh://root@{}:{}/srv/projects/{}/git/project.git".format(ctl.address, access["ssh_port"], NAME)
    env = dict(os.environ, GIT_SSH_COMMAND="ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
               "-o BatchMode=yes".format(key))
    push = subprocess.run(["git", "push", remote, "main"], cwd=src, env=env, capture_output=True, text=True,
                          timeout=900)
    if push.returncode:
        raise BenchError("git push to {} failed: {}".format(NAME, push.stderr.strip()[-300:]))


def get(url, host):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": host}), timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return type(exc).__name__


def bench_redeploy(section, out, notes):
    section("r")
    missing = missing_requirements()
    if missing:
        out("skipped: needs root, LXC, nftables, haproxy and OpenSSH's sshd (missing: {})".format(", ".join(missing)))
        return
    ctl = BenchController()
    workdir = tempfile.mkdtemp(prefix="corpus-bench-r-", dir="/var/tmp")
    try:
        ctl.setup()
        notes.append("(r) " + warm_golden(ctl))
        made = ctl.run("mc_cloud.init_env", NAME, "staging")
        init_steps = job_steps(ctl, NAME, "init_env")
        access = made.data["access"]
        push_app(ctl, access, workdir)
        host = urllib.parse.urlsplit(access["urls"][0]).hostname
        url = "http://{}:{}/health".format(ctl.address, ctl.http_port)
        if get(url, host) != 200:
            raise BenchError("{} does not answer 200 through the proxy before the redeploy".format(host))
        seen, stop = [], threading.Event()

        def loop():
            while not stop.is_set() and len(seen) < 100000:
                seen.append(get(url, host))

        loader = threading.Thread(target=loop)
        loader.start()
        try:
            redeployed = ctl.run("mc_cloud.redeploy", NAME, check=False)
        finally:
            stop.set()
            loader.join()
        if not redeployed.ok:
            raise BenchError("redeploy {} failed: {}".format(NAME, redeployed.reason()))
        steps = job_steps(ctl, NAME, "redeploy")
        ctl.run("mc_cloud.destroy_env", NAME)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        problems = ctl.teardown()
        notes.extend("cleanup (r): " + problem for problem in problems)
    total = sum(seconds for _, seconds in steps)
    failed = [answer for answer in seen if answer != 200]
    out("environment {} (staging, examples/wsgi-app live) on node {}: salt-run mc_cloud.redeploy;".format(
        NAME, ctl.address))
    out("step times from mc_jobs.status (steps in one group run at the same time: their sum is over wall)")
    out()
    rows = [["{:>2}. {}".format(i, step), fmt_seconds(seconds), "{:.0f}%".format(100 * seconds / total) if total
             else "-"] for i, (step, seconds) in enumerate(steps, 1)]
    init_total = sum(seconds for _, seconds in init_steps)
    rows += [["sum of the {} steps".format(len(steps)), fmt_seconds(total), "100%"],
             ["redeploy wall time (salt-run)", fmt_seconds(redeployed.seconds), ""],
             ["init_env of the same environment (wall, baseline)", fmt_seconds(made.seconds), ""],
             ["redeploy / init_env", fmt_ratio(ratio(redeployed.seconds, made.seconds)), ""]]
    table(["redeploy step", "seconds", "share"], rows, out=out)
    out()
    out("requests through the node's proxy during the redeploy: {}, failed or not 200: {}{}".format(
        len(seen), len(failed), " ({})".format(sorted(set(map(str, failed)))[:5]) if failed else ""))
    notes.append("(r) init_env steps summed {}".format(fmt_seconds(init_total)))
    if failed:
        raise BenchError("{} request(s) failed during the redeploy".format(len(failed)))
    return {"steps": steps, "wall": redeployed.seconds, "requests": len(seen), "failed": len(failed)}


if __name__ == "__main__":
    def _section(key):
        print("=" * 78)
        print("(r) redeploy of an environment: each step's time, requests during it")
        print("=" * 78)

    found = []
    started = time.monotonic()
    bench_redeploy(_section, print, found)
    for note in found:
        print("note: " + note)
    print("total {}".format(fmt_seconds(time.monotonic() - started)))
