"""``proxy:*``: the node's HTTP proxy routes to an environment's domains."""

from mc_project.common.vocabulary import APP_PORT
from mc_project.controller import envs


def add_routes(ctl, ctx):
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    for domain in envs.domains(ctx.clipboard):
        ctl.call(node["minion_id"], "mc_lxc.add_route", domain=domain, address=clip["ip"], port=APP_PORT)
        ctx.undo_data.setdefault("domains", []).append(domain)
        ctx.log("proxy on {}:{} routes {} to {}:{}".format(node["name"], node["http_port"], domain,
                                                          clip["ip"], APP_PORT))


def remove_routes(ctl, ctx):
    node = ctx.clipboard.get("node")
    if not node:
        return
    for domain in ctx.undo_data.get("domains") or envs.domains(ctx.clipboard):
        ctl.call(node["minion_id"], "mc_lxc.remove_route", domain=domain)


STEPS = {
    "proxy:add_route": (add_routes, remove_routes),
    "proxy:remove_routes": (remove_routes, None),
}
