"""What a new container boots with: root's password and key, and its minion.

They are written into the stopped container's image while ``lxc.configure`` has it mounted,
as the container's own root (``lxc.chroot_argv``), so that the container comes up with SSH
open to root's key and its minion starting with the system: nothing runs inside it after it
started, and the minion connects while the controller does other work. The minion's key pair
is made here (or kept, when configuring again) and its public half returned, for the master
to accept before the container starts.

A container whose image has no minion venv baked from the node's wheelhouse gets no minion at
boot (``minion`` in the answer says why); ``minion.install_minion`` installs it once it runs.
"""

import os

from mc_project.common.vocabulary import LXC_PATH, MINION_UNIT
from mc_project.errors import CorpusError
from mc_project.node import images, inside, lxc, minion
from mc_project.node.shell import run

WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
ROOT_KEYS = "/root/.ssh/authorized_keys"
CONTAINER_ENV = {"PATH": inside.CONTAINER_PATH, "HOME": "/root", "LANG": "C.UTF-8"}


def _read(rootfs, path):
    try:
        with open(os.path.join(rootfs, path.lstrip("/")), encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return ""


def venv_baked(rootfs, wheelhouse):
    """Why the image's minion venv cannot start at boot, or '' when it can (it was baked from
    this very ``wheelhouse``)."""
    if not os.access(os.path.join(rootfs, minion.VENV.lstrip("/"), "bin", "salt-minion"), os.X_OK):
        return "no venv baked in the golden image"
    if _read(rootfs, images.VENV_STAMP).strip() != images.wheelhouse_stamp(wheelhouse):
        return "the venv was baked from another wheelhouse"
    return ""


def minion_key_pair(rootfs):
    """The minion key pair the image has, or a new one (PEM texts)."""
    private, public = _read(rootfs, minion.PKI_DIR + "/minion.pem"), _read(rootfs, minion.PKI_DIR + "/minion.pub")
    if private and public:
        return private, public
    import salt.crypt  # on the node, where Salt runs this

    return salt.crypt.gen_keys(minion.KEY_SIZE)


def check(password_hash, root_key, booted_minion):
    inside.check_password_hash(password_hash)
    inside.checked_public_key(root_key)
    if booted_minion is not None:
        for key in ("master", "minion_id", "wheelhouse"):
            if not isinstance(booted_minion.get(key), str):
                raise CorpusError("The minion to start at boot needs its {}.".format(key))
        minion.check_connection(booted_minion["master"], booted_minion["minion_id"],
                                booted_minion.get("publish_port"), booted_minion.get("master_port"))


def writer(password_hash, root_key, booted_minion=None):
    """What ``lxc.configure`` runs on the mounted image: ``(rootfs, id base) -> answer``.

    ``booted_minion`` is ``{master, minion_id, wheelhouse, publish_port, master_port,
    sync_modules}``; the
    answer holds ``minion`` ("at boot" or why not) and ``minion_public_key``.
    """
    check(password_hash, root_key, booted_minion)

    def write(rootfs, base):
        files = {ROOT_KEYS: (root_key.strip() + "\n", 0o600)}
        answer = {"minion": "not asked for", "minion_public_key": None}
        if booted_minion is not None:
            why_not = venv_baked(rootfs, booted_minion["wheelhouse"])
            answer["minion"] = why_not or "at boot"
            if not why_not:
                private, public = minion_key_pair(rootfs)
                files.update({
                    minion.MINION_CONF: (minion.minion_config(
                        booted_minion["master"], booted_minion["minion_id"], booted_minion.get("publish_port"),
                        booted_minion.get("master_port"), booted_minion.get("sync_modules", True)), 0o644),
                    "/etc/systemd/system/" + MINION_UNIT: (minion.UNIT_TEXT, 0o644),
                    minion.PKI_DIR + "/minion.pem": (private, 0o400),
                    minion.PKI_DIR + "/minion.pub": (public, 0o644),
                })
                answer["minion_public_key"] = public
        chroot = lxc.chroot_argv(rootfs, base)
        enable = ""
        if answer["minion_public_key"]:
            # What ``systemctl enable`` makes, made without a running systemd.
            enable = " && mkdir -p {wants} && ln -sfn /etc/systemd/system/{unit} {wants}/{unit}".format(
                wants=WANTS_DIR, unit=MINION_UNIT)
        run(chroot + ["sh", "-c", "umask 077 && mkdir -p /root/.ssh && tar -x -C /" + enable],
            "Writing root's key and the minion into the container's image", input=minion.files_tar(files),
            env=CONTAINER_ENV, text=False)
        # Through stdin: the hash stays out of the process list.
        run(chroot + ["chpasswd", "-e"], "Setting the root password in the container's image",
            input="root:{}\n".format(password_hash), env=CONTAINER_ENV)
        answer["host_keys"] = host_keys(rootfs)
        return answer

    return write


def host_keys(rootfs):
    """The image's SSH host public keys as ``"<type> <base64>"`` lines (no comment)."""
    directory = os.path.join(rootfs, "etc", "ssh")
    keys = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith("ssh_host_") and entry.endswith("_key.pub"):
            keys.append(" ".join(_read(rootfs, "/etc/ssh/" + entry).split()[:2]))
    return sorted(key for key in keys if key)


def configure(name, hostname, address, gateway=None, bridge="corpusbr0", lxc_path=LXC_PATH, password_hash=None,
              root_key=None, booted_minion=None):
    """``lxc.configure`` with root's credentials and (unless ``booted_minion`` is None) the
    minion written in; its answer has ``host_keys``, ``minion`` and ``minion_public_key``."""
    return lxc.configure(name, hostname, address, gateway, bridge, lxc_path,
                         with_image=writer(password_hash, root_key, booted_minion))
