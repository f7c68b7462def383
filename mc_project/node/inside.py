"""Commands inside a container: one way to run them, whether it runs or not, and what
corpus does with it (the root password, root's authorized keys, its SSH host keys).

A running container is reached through ``lxc-attach``; a stopped one's files by mounting its
image and ``chroot``.
"""

import re

from mc_project.common import messages
from mc_project.common.vocabulary import LXC_PATH
from mc_project.errors import CorpusError
from mc_project.node import images, lxc
from mc_project.node.shell import run as run_tool

CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHA512_CRYPT_RE = re.compile(r"^\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$")
PUBLIC_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n\r]*)?$"
)


def attach(name, cmd, lxc_path=LXC_PATH, input=None, timeout=900, text=True):
    """Run ``cmd`` (a list, or a string run by ``sh -c``) in a running container.
    Returns ``{retcode, stdout, stderr}``; ``input`` goes to its stdin (bytes, and
    bytes out, with ``text=False``)."""
    lxc.require(name, lxc_path)
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(part) for part in cmd]
    proc = run_tool(
        [
            "lxc-attach",
            "-n",
            name,
            "-P",
            lxc_path,
            "--clear-env",
            "--set-var",
            "PATH=" + CONTAINER_PATH,
            "--set-var",
            "HOME=/root",
            "--set-var",
            "LANG=C.UTF-8",
            "--",
        ]
        + argv,
        "Running a command in container {}".format(name),
        input=input,
        check=False,
        timeout=timeout,
        text=text,
    )
    return {"retcode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def run(name, lxc_path, cmd, what, input=None, text=True):
    """Run ``cmd`` (a list, or a string run by ``sh -c``) in the container whether it runs
    (lxc-attach) or not (chroot into its image); raise with ``what`` when it fails. Returns
    stdout (bytes with ``text=False``)."""
    lxc.require(name, lxc_path)
    if lxc.state(name, lxc_path) == "RUNNING":
        out = attach(name, cmd, lxc_path, input=input, text=text)
        if out["retcode"]:
            raise CorpusError("{} failed: {}.".format(
                what, messages.last_line(out["stderr"] or out["stdout"], "exit status {}".format(out["retcode"]))))
        return out["stdout"]
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    with images.mounted_image(lxc.rootdev_path(name, lxc_path)) as rootfs:
        env = {"PATH": CONTAINER_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        chroot = lxc.chroot_argv(rootfs, lxc.id_base(name, lxc_path))
        return run_tool(chroot + argv, what, input=input, env=env, text=text).stdout


def check_password_hash(password_hash):
    if not isinstance(password_hash, str) or not SHA512_CRYPT_RE.match(password_hash):
        raise CorpusError("The root password must be given as a SHA-512 crypt hash ($6$...).")


def checked_public_key(public_key):
    """``public_key`` without surrounding blanks, or one sentence when it is not an OpenSSH
    public key line."""
    public_key = (public_key or "").strip() if isinstance(public_key, str) else ""
    if not PUBLIC_KEY_RE.match(public_key):
        raise CorpusError("That is not an OpenSSH public key line (type, base64 key, optional comment).")
    return public_key


def set_root_password(name, password_hash, lxc_path=LXC_PATH):
    """Set root's password from its crypt(3) SHA-512 hash (the password itself never comes here)."""
    check_password_hash(password_hash)
    # Through stdin: the hash stays out of the process list.
    run(
        name,
        lxc_path,
        ["chpasswd", "-e"],
        "Setting the root password of {}".format(name),
        input="root:{}\n".format(password_hash),
    )
    return {"name": name, "changed": True}


AUTHORIZE_SCRIPT = """set -e
umask 077
mkdir -p /root/.ssh
keys=/root/.ssh/authorized_keys
touch "$keys"
if grep -qxF "$1" "$keys"; then echo present; else printf '%s\\n' "$1" >> "$keys"; echo added; fi
"""


def authorize_key(name, public_key, lxc_path=LXC_PATH):
    """Let ``public_key`` (an OpenSSH public key line) log in as root. Adding it twice is fine."""
    public_key = checked_public_key(public_key)
    out = run(
        name,
        lxc_path,
        ["sh", "-c", AUTHORIZE_SCRIPT, "authorize", public_key],
        "Authorizing a key in {}".format(name),
    )
    return {"name": name, "changed": out.strip() == "added"}


def host_keys(name, lxc_path=LXC_PATH):
    """The container's SSH host public keys as ``"<type> <base64>"`` lines (no comment)."""
    out = run(
        name,
        lxc_path,
        ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true"],
        "Reading the SSH host keys of {}".format(name),
    )
    keys = [" ".join(line.split()[:2]) for line in out.splitlines() if line.strip()]
    if not keys:
        raise CorpusError("Container {} has no SSH host keys: configure it first.".format(name))
    return sorted(keys)
