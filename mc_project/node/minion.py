"""A corpus salt-minion inside a container, installed from the node's wheelhouse (no internet).

The wheelhouse is streamed into the container as a tar through ``lxc-attach``; corpus and
Salt go into the venv ``/opt/corpus/venv``; the minion runs as the systemd unit
``corpus-minion.service``. Its key pair is made before the first start, so the fingerprint
returned is the one the minion will present and the controller can accept exactly that key.
"""

import io
import json
import os
import re
import tarfile

from mc_project.common.vocabulary import LXC_PATH, MINION_UNIT
from mc_project.errors import CorpusError
from mc_project.node import inside, lxc

PREFIX = "/opt/corpus"
VENV = PREFIX + "/venv"
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


def minion_config(master, minion_id, publish_port=None, master_port=None):
    """A container minion's minion.d file."""
    # The controller accepts the key as soon as it is offered: retry within a second, not ten.
    config = {"master": master, "id": minion_id, "acceptance_wait_time": 1}
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


def install_minion(
    name, master, minion_id, wheelhouse, lxc_path=LXC_PATH, publish_port=None, master_port=None
):
    """Install and start the corpus minion in running container ``name``; returns
    ``{minion_id, fingerprint}``. Running it again reinstalls and restarts it, same key."""
    lxc.require(name, lxc_path)
    if not isinstance(master, str) or not MASTER_RE.match(master):
        raise CorpusError("{!r} is not a master address.".format(master))
    if not isinstance(minion_id, str) or not MINION_ID_RE.match(minion_id):
        raise CorpusError("{!r} is not a minion id.".format(minion_id))
    if not os.path.isdir(wheelhouse or ""):
        raise CorpusError("The wheelhouse {} is not a directory on this node.".format(wheelhouse))
    if lxc.state(name, lxc_path) != "RUNNING":
        raise CorpusError("Container {} must be running to install its minion.".format(name))
    for port in (publish_port, master_port):
        if port is not None and not str(port).isdigit():
            raise CorpusError("{!r} is not a port.".format(port))
    archive = wheelhouse_tar(wheelhouse)
    where = " in container {}".format(name)  # how each step's failure names the container
    inside.run(name, lxc_path, "rm -rf {0} && mkdir -p {0} && tar -x -C {0}".format(WHEELHOUSE),
               "Copying the wheelhouse" + where, input=archive, text=False)
    inside.run(name, lxc_path, "test -x {0}/bin/python || python3 -m venv {0}".format(VENV),
               "Making the venv" + where)
    inside.run(
        name,
        lxc_path,
        "{}/bin/pip install -q --no-index --find-links {} corpus".format(VENV, WHEELHOUSE),
        "Installing corpus" + where,
    )
    inside.run(
        name,
        lxc_path,
        "mkdir -p {} && cat > {}".format(os.path.dirname(MINION_CONF), MINION_CONF),
        "Writing the minion configuration" + where,
        input=minion_config(master, minion_id, publish_port, master_port),
    )
    inside.run(
        name,
        lxc_path,
        "test -f {0}/minion.pem || {1}/bin/salt-key -q --gen-keys=minion --gen-keys-dir={0}".format(
            PKI_DIR, VENV
        ),
        "Making the minion key" + where,
    )
    inside.run(
        name,
        lxc_path,
        "cat > /etc/systemd/system/{}".format(MINION_UNIT),
        "Writing the minion unit" + where,
        input=UNIT_TEXT,
    )
    inside.run(
        name,
        lxc_path,
        "systemctl daemon-reload && systemctl enable -q {0} && systemctl restart {0}".format(MINION_UNIT),
        "Starting the minion" + where,
    )
    out = inside.run(
        name,
        lxc_path,
        "{}/bin/salt-call --local --out=json key.finger".format(VENV),
        "Reading the minion key fingerprint" + where,
    )
    try:
        fingerprint = json.loads(out)["local"]
    except (ValueError, KeyError, TypeError):
        raise CorpusError("salt-call in container {} gave no key fingerprint.".format(name)) from None
    public_key = inside.run(name, lxc_path, "cat {}/minion.pub".format(PKI_DIR),
                            "Reading the minion public key" + where)
    return {"minion_id": minion_id, "fingerprint": fingerprint, "public_key": public_key}
