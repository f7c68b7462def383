"""What the inventory knows of environments, as the controller's steps and operations read it.

An environment is a container a project runs in. The steps that make and unmake
one are in ``steps/``; the jobs that run them in ``operations.py``. The
clipboard of a job on an environment never holds a secret (passwords and private
keys are ``Secret`` rows).
"""

import random
import time

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from mc_project.common.vocabulary import LIVE_ENV_STATUSES
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, Environment, Job


def find_environment(sess, name):
    """Environment ``name``, or None: for undo steps, which must cope with it being gone."""
    return sess.scalar(select(Environment).where(Environment.name == name))


def environment(sess, name):
    env = find_environment(sess, name)
    if env is None:
        raise CorpusError("No environment named {}.".format(name))
    return env


def redeploys_in_flight(sess, exclude_job=None):
    """The new containers of the redeploys not finished (``{container, ip, minion_id, node...}``):
    their names and addresses are taken, though no environment holds them yet."""
    found = []
    for job in sess.scalars(select(Job).where(Job.kind == "redeploy",
                                              Job.status.in_(("pending", "running", "interrupted")))):
        clip = job.clipboard or {}
        if job.id != exclude_job and clip.get("next"):
            found.append(dict(clip["next"], node=(clip.get("node") or {}).get("name")))
    return found


def addresses_in_use(sess, node, exclude_job=None):
    """The container addresses of ``node`` (a ``ComputeNode``) that environments or redeploys hold."""
    used = set(sess.scalars(select(Environment.ip).where(Environment.node_id == node.id,
                                                         Environment.ip.is_not(None))))
    return used | {row.get("ip") for row in redeploys_in_flight(sess, exclude_job) if row["node"] == node.name}


def container_names_in_use(sess, exclude_job=None):
    """The container names environments or redeploys hold (a redeployed one's is ``<name>-<n>``)."""
    return (set(sess.scalars(select(Environment.container).where(Environment.container.is_not(None))))
            | {row.get("container") for row in redeploys_in_flight(sess, exclude_job)})


def live_count(sess, node):
    return sess.scalar(select(func.count(Environment.id)).where(
        Environment.node_id == node.id, Environment.status.in_(LIVE_ENV_STATUSES)))


def node_with_room(sess, name):
    node = sess.scalar(select(ComputeNode).where(ComputeNode.name == name))
    if node is None:
        raise CorpusError("No compute node named {}.".format(name))
    if node.status != "active":
        raise CorpusError("Compute node {} is {}, not active.".format(name, node.status))
    if live_count(sess, node) >= node.slots:
        raise CorpusError("Compute node {} has no free slot ({} used).".format(name, node.slots))
    return node


class Contended(Exception):
    """Another job took what this transaction chose: choose again."""


def allocating(ctl, choose, attempts=20):
    """Run ``choose(sess)`` in a transaction, again when a parallel job won the race.

    Allocations (a slot, an address, a port) read what is free then write
    their pick; the inventory's unique constraints, or a recount, catch two
    jobs picking the same thing, and the loser picks again.
    """
    for attempt in range(attempts):
        try:
            with db.session(ctl.url) as sess:
                return choose(sess)
        except (IntegrityError, OperationalError, Contended):
            if attempt == attempts - 1:
                raise CorpusError("The inventory stayed busy with other jobs; try again.") from None
            time.sleep(random.uniform(0.05, 0.3))


def node_info(node):
    """What the steps of a job on an environment know of its node (in the clipboard)."""
    return {"name": node.name, "minion_id": node.minion_id or node.name, "address": node.address,
            "dns_name": node.dns_name, "subnet": node.subnet, "bridge": node.bridge,
            "lxc_path": node.lxc_path, "http_port": node.http_port, "prefix": node.prefix}


def node_id(sess, node):
    """The inventory id of the clipboard's ``node``, or None."""
    return sess.scalar(select(ComputeNode.id).where(ComputeNode.name == node["name"])) if node else None


def env_clipboard(ctl, name):
    """What the inventory knows of an environment, as the clipboard of a job on it."""
    with db.session(ctl.url) as sess:
        env = environment(sess, name)
        node = sess.get(ComputeNode, env.node_id) if env.node_id else None
        return {"env_name": env.name, "env_uuid": env.uuid, "env_type": env.env_type,
                "project": env.project, "minion_id": env.minion_id, "domain": (env.domains or [None])[0],
                "extra_domains": list(env.domains or [])[1:], "ip": env.ip,
                "container": env.container or env.name, "node": node_info(node) if node else None}


def container_of(clip):
    """The LXC container of the clipboard's environment: named as the environment, until a
    redeploy moved it to another (``Environment.container``)."""
    return clip.get("container") or clip["env_name"]


def domains(clip):
    """The domains a step works on: one being linked, else all of the environment's."""
    return [clip["new_domain"]] if clip.get("new_domain") else [clip["domain"]] + clip.get("extra_domains", [])


def access_details(clip):
    """How the requester reaches a new environment: its URLs, SSH and git remote."""
    node = clip["node"]
    port = "" if node["http_port"] == 80 else ":{}".format(node["http_port"])
    return {"name": clip["env_name"], "uuid": clip["env_uuid"], "env_type": clip["env_type"],
            "urls": ["http://{}{}/".format(domain, port)
                     for domain in [clip["domain"]] + clip.get("extra_domains", [])],
            "ssh_host": clip["domain"], "ssh_port": clip.get("ssh_port"), "node": node["name"],
            "node_address": node["address"], "git_remote": clip.get("git_remote"),
            "project": clip["project"]}
