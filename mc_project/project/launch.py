"""Start one slot of a project's app: ``python -m mc_project.project.launch SPEC``.

supervisord runs this; it reads the slot's spec (command, directory, environment,
user: a 0600 file only root or the deploying user can read), drops to the project
user when it runs as root, and execs ``/bin/sh -c COMMAND``. The environment, secrets
included, never appears in a config file or on a command line. Standard library only:
it starts on every deploy.
"""

import json
import os
import pwd
import sys


def main(spec_path):
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    env = dict(spec["env"])
    if os.geteuid() == 0 and spec.get("user") and spec["user"] != "root":
        entry = pwd.getpwnam(spec["user"])
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        env.update(USER=entry.pw_name, LOGNAME=entry.pw_name, HOME=spec.get("home") or entry.pw_dir)
    os.chdir(spec["cwd"])
    os.umask(0o027)
    os.execve("/bin/sh", ["/bin/sh", "-c", spec["command"]], env)


if __name__ == "__main__":
    main(sys.argv[1])
