"""``lxc:*``: an environment's container on its node (through ``mc_lxc``)."""

from mc_project.controller import envs
from mc_project.inventory import db


def clone_container(ctl, ctx):
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    lxc = ctl.settings["lxc"]
    golden = ctl.call(node["minion_id"], "mc_lxc.golden", lxc_path=node["lxc_path"], mirror=lxc["mirror"],
                      suite=lxc["suite"], disk_size_mb=lxc["disk_size_mb"],
                      wheelhouse="{}/wheelhouse".format(node["prefix"]), timeout=1800)
    ctx.log("golden image {} ({}; minion venv {})".format(
        golden.get("name"), "built" if golden.get("built") else "cached", golden.get("venv", "not asked for")))
    made = ctl.call(node["minion_id"], "mc_lxc.clone", name=clip["env_name"], lxc_path=node["lxc_path"],
                    disk_size_mb=clip["disk_size_mb"], exist_ok=True, spare=lxc["spare"], timeout=600)
    ctx.log("container {} {} on {}".format(
        clip["env_name"], "taken from the spare" if made.get("spare") else "cloned", node["name"]))


def destroy_container(ctl, ctx):
    node = ctx.clipboard.get("node")
    if node:
        ctl.call(node["minion_id"], "mc_lxc.destroy", name=ctx.clipboard["env_name"],
                 lxc_path=node["lxc_path"], timeout=300)


def configure_container(ctl, ctx):
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    ctl.call(node["minion_id"], "mc_lxc.configure", name=clip["env_name"], hostname=clip["env_name"],
             address="{}/{}".format(clip["ip"], clip["prefixlen"]), gateway=clip["gateway"],
             bridge=node["bridge"], lxc_path=node["lxc_path"])
    ctl.call(node["minion_id"], "mc_lxc.start", name=clip["env_name"], lxc_path=node["lxc_path"],
             wait=120, timeout=300)
    ctx.log("container {} started at {}".format(clip["env_name"], clip["ip"]))


def resize_container(ctl, ctx):
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    ret = ctl.call(node["minion_id"], "mc_lxc.resize", name=clip["env_name"], size_mb=clip["size_mb"],
                   lxc_path=node["lxc_path"], timeout=600)
    with db.session(ctl.url) as sess:
        envs.environment(sess, clip["env_name"]).disk_size_mb = clip["size_mb"]
    ctx.log("rootfs of {} now {} MiB ({})".format(clip["env_name"], clip["size_mb"], ret))


STEPS = {
    "lxc:clone": (clone_container, destroy_container),
    "lxc:configure": (configure_container, None),
    "lxc:destroy": (destroy_container, None),
    "lxc:resize": (resize_container, None),
}
