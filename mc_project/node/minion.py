"""A corpus salt-minion inside a container, installed from the node's wheelhouse (no internet).

Corpus and Salt live in the venv ``/opt/corpus/venv``, which a container cloned from a golden
image baked from the node's wheelhouse has already (``images.bake_minion_venv``); otherwise the
wheelhouse is streamed into the container as a tar through ``lxc-attach`` and pip makes it
there. The minion runs as the systemd unit ``corpus-minion.service``. Its key pair is written
before the first start (the controller's, accepted in advance, or one made here), so the
fingerprint returned is the one the minion presents.
"""

import hashlib
import io
import json
import os
import re
import tarfile
import time

from mc_project.common.vocabulary import LXC_PATH, MINION_UNIT
from mc_project.errors import CorpusError
from mc_project.node import images, inside, lxc

PREFIX = images.MINION_PREFIX
VENV = images.MINION_VENV
WHEELHOUSE = PREFIX + "/wheelhouse"
MINION_CONF = "/etc/salt/minion.d/corpus.conf"
PKI_DIR = "/etc/salt/pki/minion"
MINION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
MASTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,253}$")


def unit_text(salt_minion, config_dir, description="corpus salt-minion"):
    """The systemd unit that runs a corpus minion: a container's, or a compute node's."""
    return """# Written by corpus.
[Unit]
Description={description}
Wants=network-online.target
After=network-online.target

[Service]
ExecStart={salt_minion} -c {config_dir}
Restart=on-failure
# Let a state that restarts the minion finish its own job.
KillMode=process

[Install]
WantedBy=multi-user.target
""".format(description=description, salt_minion=salt_minion, config_dir=config_dir)


UNIT_TEXT = unit_text(VENV + "/bin/salt-minion", "/etc/salt")


def config_text(options):
    """A minion configuration file: JSON is YAML, and quoting every value keeps YAML from
    guessing types."""
    return "# Written by corpus.\n" + "".join("{}: {}\n".format(k, json.dumps(v)) for k, v in options.items())


def minion_config(master, minion_id, publish_port=None, master_port=None, sync_modules=True):
    """A container minion's minion.d file.

    ``sync_modules`` False: the master serves no custom modules (corpus's come with the
    minion's venv), so a highstate does not ask it for each of Salt's ~20 module types first
    (about a second of each highstate)."""
    # The controller accepts the key as soon as it is offered: retry within a second, not ten.
    # Corpus keeps no Salt mine: without it, a minion does not run mine.update in a job
    # process of its own as it starts (a tenth of its start-up's CPU).
    config = {"master": master, "id": minion_id, "acceptance_wait_time": 1, "mine_enabled": False}
    if not sync_modules:
        config["autoload_dynamic_modules"] = False
    if publish_port:
        config["publish_port"] = int(publish_port)
    if master_port:
        config["master_port"] = int(master_port)
    return config_text(config)


def wheelhouse_tar(wheelhouse):
    """The wheel files of ``wheelhouse`` as an uncompressed tar (wheels are compressed already)."""
    wheels = sorted(name for name in os.listdir(wheelhouse) if name.endswith(".whl"))
    if not any(name.startswith("corpus-") for name in wheels):
        raise CorpusError("The wheelhouse {} has no corpus wheel.".format(wheelhouse))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in wheels:
            tar.add(os.path.join(wheelhouse, name), arcname=name)
    return buffer.getvalue()


def check_connection(master, minion_id, publish_port=None, master_port=None):
    """Refuse, in one sentence, a master address, minion id or port a minion cannot be given."""
    if not isinstance(master, str) or not MASTER_RE.match(master):
        raise CorpusError("{!r} is not a master address.".format(master))
    if not isinstance(minion_id, str) or not MINION_ID_RE.match(minion_id):
        raise CorpusError("{!r} is not a minion id.".format(minion_id))
    for port in (publish_port, master_port):
        if port is not None and not str(port).isdigit():
            raise CorpusError("{!r} is not a port.".format(port))


def install_minion(
    name, master, minion_id, wheelhouse, lxc_path=LXC_PATH, publish_port=None, master_port=None,
    public_key=None, private_key=None, sync_modules=True,
):
    """Install and start the corpus minion in running container ``name``; returns
    ``{minion_id, fingerprint, public_key, path}``. Running it again restarts it, same key.

    A container cloned from a golden image baked from this very wheelhouse (its venv stamp is
    the wheelhouse's) has the venv already: only the configuration, the key and the unit are
    written (``path`` "golden"); otherwise the wheelhouse is copied in and pip installs corpus
    (``path`` "pip (why)"). ``public_key`` and ``private_key`` (PEM) are the key pair the
    minion starts with, accepted by the master in advance; without them the container keeps
    the key it has, or gets a new one made here.
    """
    lxc.require(name, lxc_path)
    check_connection(master, minion_id, publish_port, master_port)
    if not os.path.isdir(wheelhouse or ""):
        raise CorpusError("The wheelhouse {} is not a directory on this node.".format(wheelhouse))
    if lxc.state(name, lxc_path) != "RUNNING":
        raise CorpusError("Container {} must be running to install its minion.".format(name))
    if bool(public_key) != bool(private_key):
        raise CorpusError("A minion key pair needs both its public and its private half.")
    where = " in container {}".format(name)  # how each step's failure names the container
    stamp = images.wheelhouse_stamp(wheelhouse)
    found = inside.run(name, lxc_path, PROBE_SCRIPT.format(venv=VENV, stamp=images.VENV_STAMP, pki=PKI_DIR),
                       "Looking at the minion's venv" + where)
    container_stamp, _, container_public = found.partition(PROBE_SEPARATOR)
    if container_stamp.strip() == stamp:
        path = "golden"
    else:
        path = "pip ({})".format("the venv was baked from another wheelhouse" if container_stamp.strip()
                                 else "no venv baked in the golden image")
        _pip_install(name, lxc_path, wheelhouse, stamp, where)
    files = {MINION_CONF: (minion_config(master, minion_id, publish_port, master_port, sync_modules), 0o644),
             "/etc/systemd/system/" + MINION_UNIT: (UNIT_TEXT, 0o644)}
    if private_key:
        files[PKI_DIR + "/minion.pem"] = (private_key, 0o400)
        files[PKI_DIR + "/minion.pub"] = (public_key, 0o644)
    elif container_public.strip():
        public_key = container_public.strip() + "\n"
    else:
        import salt.crypt  # on the node, where Salt runs this

        private_key, public_key = salt.crypt.gen_keys(KEY_SIZE)
        files[PKI_DIR + "/minion.pem"] = (private_key, 0o400)
        files[PKI_DIR + "/minion.pub"] = (public_key, 0o644)
    inside.run(
        name,
        lxc_path,
        "tar -x -C / && systemctl daemon-reload && systemctl enable -q {0} && systemctl restart {0}".format(
            MINION_UNIT),
        "Writing and starting the minion" + where,
        input=files_tar(files),
        text=False,
    )
    return {"minion_id": minion_id, "fingerprint": pem_fingerprint(public_key), "public_key": public_key,
            "path": path}


KEY_SIZE = 2048
PROBE_SEPARATOR = "\n--corpus-minion-key--\n"
# The stamp of the venv the container has (none without a working salt-minion), then its key.
PROBE_SCRIPT = ("test -x {venv}/bin/salt-minion && cat {stamp} 2>/dev/null; "
                "printf '" + PROBE_SEPARATOR.replace("\n", "\\n") + "'; cat {pki}/minion.pub 2>/dev/null; true")


def _pip_install(name, lxc_path, wheelhouse, stamp, where):
    """The slow path: the wheelhouse into the container, the venv made with pip there."""
    inside.run(name, lxc_path, "rm -rf {0} && mkdir -p {0} && tar -x -C {0}".format(WHEELHOUSE),
               "Copying the wheelhouse" + where, input=wheelhouse_tar(wheelhouse), text=False)
    inside.run(name, lxc_path, "test -x {0}/bin/python || python3 -m venv {0}".format(VENV),
               "Making the venv" + where)
    inside.run(
        name,
        lxc_path,
        "{}/bin/pip install -q --no-index --find-links {} corpus && printf '%s\\n' {} > {}".format(
            VENV, WHEELHOUSE, stamp, images.VENV_STAMP),
        "Installing corpus" + where,
    )


def files_tar(files):
    """``{absolute path: (text, mode)}`` as a tar to extract at ``/`` (owned by root); the
    minion's key directory is made private."""
    buffer, now = io.BytesIO(), time.time()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if any(path.startswith(PKI_DIR + "/") for path in files):
            for directory, mode in ((os.path.dirname(PKI_DIR), 0o755), (PKI_DIR, 0o700)):
                info = tarfile.TarInfo(directory.lstrip("/"))
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
                tar.addfile(info)
        for path, (text, mode) in sorted(files.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pem_fingerprint(public_key):
    """The fingerprint Salt shows for a PEM public key (``salt.utils.crypt.pem_finger``): the
    SHA-256 of its base64 lines."""
    lines = [line.strip() + "\n" for line in public_key.splitlines() if line.strip()][1:-1]
    digest = hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
