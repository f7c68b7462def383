"""The app's process supervisor: one supervisord per project, one ``web`` program.

The program runs from the ``current`` link, so restarting it after a switch starts
the new release. Its command comes from the mapping's ``web``, else the release's
``Procfile`` ``web:`` line, else a static file server for the tree.
"""

import hashlib
import ipaddress
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from mc_project.errors import CorpusError

PROGRAM = "web"
HEALTH_MARK = "; health="


def _bin(name):
    """supervisord / supervisorctl next to the running Python (the corpus venv)."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else name


def conf_path(cfg):
    return os.path.join(cfg["paths"]["supervisor"], "supervisord.conf")


def socket_path(cfg):
    path = os.path.join(cfg["paths"]["supervisor"], "supervisor.sock")
    if len(path) > 100:  # AF_UNIX paths are limited to 108 bytes
        digest = hashlib.sha1(path.encode()).hexdigest()[:12]
        # A fixed short directory, not $TMPDIR: every caller (the hook under the
        # pusher's environment, a later salt-call) must find the same socket, and
        # $TMPDIR may itself be too long.
        path = os.path.join("/tmp", "corpus-{}.sock".format(digest))
    return path


def web_command(cfg, tree):
    """The shell command that serves the app in ``tree`` (a release or the checkout)."""
    if cfg.get("web"):
        return cfg["web"]
    procfile = os.path.join(tree, "Procfile")
    if os.path.exists(procfile):
        with open(procfile, encoding="utf-8") as fh:
            for line in fh:
                key, _, command = line.partition(":")
                if key.strip() == "web" and command.strip():
                    return command.strip()
    static = cfg.get("static_dir") or ("public" if os.path.isdir(os.path.join(tree, "public")) else ".")
    return "exec {} -m http.server $PORT --bind $HOST --directory {}".format(sys.executable, static)


def _quote_env(value):
    return '"{}"'.format(str(value).replace("%", "%%").replace('"', '\\"'))


def write_conf(cfg, tree):
    """Write supervisord.conf for the app in ``tree``; True when it changed."""
    sup = cfg["paths"]["supervisor"]
    os.makedirs(sup, exist_ok=True)
    os.makedirs(cfg["paths"]["logs"], exist_ok=True)
    env = {str(k): v for k, v in (cfg.get("environment") or {}).items()}
    env.update({
        "PORT": cfg["port"],
        "HOST": cfg["bind"],
        "CORPUS_PROJECT": cfg["name"],
        "CORPUS_ENV": cfg["env"],
        "CORPUS_DATA": cfg["paths"]["data"],
        "PATH": "{}:{}".format(os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")),
    })
    command = web_command(cfg, tree).replace("%", "%%")
    text = "\n".join([
        "; written by corpus for project {}".format(cfg["name"]),
        "{}{} {} {}".format(HEALTH_MARK, health_url(cfg), int(cfg["health"].get("status", 200)),
                            float(cfg["health"].get("timeout", 30))),
        "[unix_http_server]",
        "file={}".format(socket_path(cfg)),
        "chmod=0700",
        "[supervisord]",
        "logfile={}".format(os.path.join(cfg["paths"]["logs"], "supervisord.log")),
        "pidfile={}".format(os.path.join(sup, "supervisord.pid")),
        "directory={}".format(cfg["paths"]["root"]),
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "[supervisorctl]",
        "serverurl=unix://{}".format(socket_path(cfg)),
        "[program:{}]".format(PROGRAM),
        "command=/bin/sh -c {}".format(_shell_quote(command)),
        "directory={}".format(cfg["paths"]["current"]),
        "environment={}".format(",".join("{}={}".format(k, _quote_env(v)) for k, v in env.items())),
        "autostart=true",
        "autorestart=true",
        "startsecs=1",
        "stopasgroup=true",
        "killasgroup=true",
        "stopwaitsecs=10",
        "redirect_stderr=true",
        "stdout_logfile={}".format(web_log(cfg)),
        "",
    ])
    path = conf_path(cfg)
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old != text:
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)
    return old != text


def web_log(cfg):
    return os.path.join(cfg["paths"]["logs"], "web.log")


def tail(path, lines):
    """The last ``lines`` non-empty lines of a log file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [line.rstrip() for line in fh.readlines()[-50:] if line.strip()][-lines:]
    except OSError:
        return []


def save_previous(cfg):
    """Keep the running app's config beside the new one, so a rollback (or the
    recovery of a killed deploy) can bring back exactly what ran before."""
    path = conf_path(cfg)
    if os.path.exists(path):
        shutil.copyfile(path, path + ".previous")
    elif os.path.exists(path + ".previous"):
        os.unlink(path + ".previous")


def restore_previous(cfg):
    """Run the app saved by ``save_previous`` again and check it answers.

    Returns the health URL that answered; None when nothing ran before (the app
    is then stopped). Raises CorpusError when the restored app does not answer."""
    path = conf_path(cfg)
    if not os.path.exists(path + ".previous"):
        shutdown(cfg)
        return None
    os.replace(path + ".previous", path)
    _start(cfg)
    ctl(cfg, "update")
    ctl(cfg, "restart", PROGRAM)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(HEALTH_MARK):
                url, status, timeout = line[len(HEALTH_MARK):].split()
                return check_url(url, int(status), float(timeout))
    return None


def _shell_quote(command):
    return "'{}'".format(command.replace("'", "'\"'\"'"))


def ctl(cfg, *args):
    """Run supervisorctl; returns (exit code, output)."""
    proc = subprocess.run([_bin("supervisorctl"), "-c", conf_path(cfg)] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode, proc.stdout.strip()


def is_running(cfg):
    return os.path.exists(conf_path(cfg)) and ctl(cfg, "pid")[0] == 0


def restart(cfg, tree):
    """(Re)start the web program for ``tree``, starting supervisord if needed."""
    write_conf(cfg, tree)
    _start(cfg)
    ctl(cfg, "update")  # applies the new command, if it changed
    code, out = ctl(cfg, "restart", PROGRAM)
    if code and "ERROR" in out:
        raise CorpusError("The web process did not start ({}); the end of {} says: {}".format(
            " ".join(out.split()), web_log(cfg), " | ".join(tail(web_log(cfg), 3))))
    return out


def _start(cfg):
    """Start supervisord for the project unless it runs."""
    if not is_running(cfg):
        proc = subprocess.run([_bin("supervisord"), "-c", conf_path(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL)
        if proc.returncode:
            raise CorpusError("supervisord did not start: {}".format(proc.stdout.strip()))
        for _ in range(50):
            if is_running(cfg):
                break
            time.sleep(0.1)
        else:
            raise CorpusError("supervisord did not answer on {}.".format(socket_path(cfg)))


def status(cfg):
    """'RUNNING', 'STOPPED', … or 'not running' when supervisord is down."""
    if not is_running(cfg):
        return "not running"
    out = ctl(cfg, "status", PROGRAM)[1]
    parts = out.split()
    return parts[1] if len(parts) > 1 else out


def shutdown(cfg):
    """Stop the app and its supervisord."""
    if is_running(cfg):
        ctl(cfg, "shutdown")
        for _ in range(100):
            if not is_running(cfg):
                break
            time.sleep(0.1)


def local_address(cfg):
    """The address this host reaches the app at (a wildcard bind answers on loopback)."""
    return "127.0.0.1" if ipaddress.ip_address(cfg["bind"]).is_unspecified else cfg["bind"]


def app_url(cfg):
    return "http://{}:{}/".format(local_address(cfg), cfg["port"])


def health_url(cfg):
    return "http://{}:{}{}".format(local_address(cfg), cfg["port"], cfg["health"].get("path", "/"))


def check_health(cfg):
    """Poll the app's health URL until it answers the expected status."""
    return check_url(health_url(cfg), int(cfg["health"].get("status", 200)),
                     float(cfg["health"].get("timeout", 30)))


def check_url(url, want, timeout):
    """Poll ``url`` until it answers HTTP ``want``; raise CorpusError after ``timeout`` s."""
    deadline = time.monotonic() + float(timeout)
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                got = resp.status
        except urllib.error.HTTPError as exc:
            got = exc.code
        except (urllib.error.URLError, OSError) as exc:
            got, last = None, str(getattr(exc, "reason", exc))
        if got == want:
            return url
        if got is not None:
            last = "HTTP {}".format(got)
        if time.monotonic() >= deadline:
            raise CorpusError("Health check {} failed after {}s: {} (wanted HTTP {}).".format(
                url, timeout, last, want))
        time.sleep(0.2)
