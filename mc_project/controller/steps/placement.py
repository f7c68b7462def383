"""``node:pick`` and ``ip:allocate``: which node an environment lives on, at which address."""

import ipaddress

from sqlalchemy import select

from mc_project.controller import envs
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode


def pick_node(ctl, ctx):
    clip = ctx.clipboard

    def choose(sess):
        env = envs.environment(sess, clip["env_name"])
        if env.node_id is not None:
            return envs.node_info(sess.get(ComputeNode, env.node_id))
        if clip.get("host"):
            node = envs.node_with_room(sess, clip["host"])
        else:
            candidates = []
            for node in sess.scalars(select(ComputeNode).where(ComputeNode.status == "active")):
                free = node.slots - envs.live_count(sess, node)
                if free > 0:
                    candidates.append((-free, node.name, node))
            if not candidates:
                raise CorpusError("No compute node has a free slot.")
            node = sorted(candidates)[0][2]
        env.node_id = node.id
        sess.flush()
        if envs.live_count(sess, node) > node.slots:  # a parallel job took the last slot first
            raise envs.Contended()
        return envs.node_info(node)

    clip["node"] = envs.allocating(ctl, choose)
    ctx.log("placed on node {}".format(clip["node"]["name"]))


def release_node(ctl, ctx):
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, ctx.clipboard["env_name"])
        if env is not None:
            env.node_id = None


def allocate_ip(ctl, ctx):
    clip = ctx.clipboard

    def choose(sess):
        env = envs.environment(sess, clip["env_name"])
        node = sess.get(ComputeNode, env.node_id)
        if not node.subnet:
            raise CorpusError("Compute node {} has no container subnet.".format(node.name))
        net = ipaddress.ip_network(node.subnet)
        hosts = list(net.hosts())
        gateway = hosts[0]  # the node's bridge
        if env.ip is None:
            used = envs.addresses_in_use(sess, node)
            free = next((str(ip) for ip in hosts[1:] if str(ip) not in used), None)
            if free is None:
                raise CorpusError("No free address left in node {}'s subnet {}.".format(node.name, net))
            env.ip = free
            sess.flush()  # a parallel job's pick of the same address fails here
        return {"ip": env.ip, "gateway": str(gateway), "prefixlen": net.prefixlen}

    clip.update(envs.allocating(ctl, choose))
    ctx.log("address {}/{}".format(clip["ip"], clip["prefixlen"]))


def release_ip(ctl, ctx):
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, ctx.clipboard["env_name"])
        if env is not None:
            env.ip = None


STEPS = {
    "node:pick": (pick_node, release_node),
    "ip:allocate": (allocate_ip, release_ip),
}
