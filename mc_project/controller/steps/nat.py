"""``nft:*``: the node port NATed to an environment's SSH."""

from sqlalchemy import delete, select

from mc_project.controller import envs
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import ComputeNode, PortMapping


def map_ssh_port(ctl, ctx):
    clip, node_info = ctx.clipboard, ctx.clipboard["node"]

    def choose(sess):
        env = envs.environment(sess, clip["env_name"])
        node = sess.get(ComputeNode, env.node_id)
        mapping = sess.scalar(select(PortMapping).where(PortMapping.environment_id == env.id,
                                                        PortMapping.internal_port == 22))
        if mapping is None:
            used = set(sess.scalars(select(PortMapping.external_port).where(
                PortMapping.node_id == node.id, PortMapping.protocol == "tcp")))
            port = next((p for p in range(node.nat_port_min, node.nat_port_max + 1) if p not in used), None)
            if port is None:
                raise CorpusError("No free port left in node {}'s range {}-{}.".format(
                    node.name, node.nat_port_min, node.nat_port_max))
            mapping = PortMapping(node_id=node.id, external_port=port, environment_id=env.id,
                                  internal_port=22, protocol="tcp")
            sess.add(mapping)
            env.ssh_nat_port = port
            sess.flush()  # a parallel job's pick of the same port fails here
        return mapping.external_port

    port = envs.allocating(ctl, choose)
    ctx.undo_data["ports"] = [port]
    ctl.call(node_info["minion_id"], "mc_lxc.map_port", external_port=port, address=clip["ip"],
             internal_port=22)
    clip["ssh_port"] = port
    ctx.log("node port {} NATed to {}:22".format(port, clip["ip"]))


def unmap_ports(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, clip["env_name"])
        if env is None:
            return
        ports = list(sess.scalars(select(PortMapping.external_port).where(
            PortMapping.environment_id == env.id)))
    node = clip.get("node")
    for port in ports:
        if node:
            ctl.call(node["minion_id"], "mc_lxc.unmap_port", external_port=port)
        with db.session(ctl.url) as sess:
            sess.execute(delete(PortMapping).where(PortMapping.external_port == port,
                                                   PortMapping.node_id == envs.node_id(sess, node)))
        ctx.log("node port {} released".format(port))
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, clip["env_name"])
        if env is not None:
            env.ssh_nat_port = None


STEPS = {
    "nft:map_port": (map_ssh_port, unmap_ports),
    "nft:unmap_ports": (unmap_ports, None),
}
