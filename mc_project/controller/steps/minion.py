"""``salt:*``: an environment's minion, installed in its container, accepted, highstated."""

from mc_project.common.vocabulary import MINION_UNIT
from mc_project.errors import CorpusError


def install_minion(ctl, ctx):
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    installed = ctl.call(node["minion_id"], "mc_lxc.install_minion", name=clip["env_name"],
                         master=ctl.settings["master_address"], minion_id=clip["minion_id"],
                         master_port=ctl.opts.get("ret_port", 4506),
                         publish_port=ctl.opts.get("publish_port", 4505),
                         wheelhouse="{}/wheelhouse".format(node["prefix"]), lxc_path=node["lxc_path"],
                         timeout=900)
    ctx.undo_data["minion_id"] = clip["minion_id"]
    ctl.accept_key(clip["minion_id"], installed["public_key"], timeout=120)
    ctl.wait_for_minion(clip["minion_id"], timeout=120)
    ctx.log("minion {} installed, key {} accepted".format(clip["minion_id"], installed["fingerprint"]))


def remove_minion(ctl, ctx):
    """Stop the container's minion, then forget its key (a running minion would offer it again)."""
    clip = ctx.clipboard
    node = clip.get("node")
    if node:
        try:
            ctl.call(node["minion_id"], "mc_lxc.attach", name=clip["env_name"],
                     cmd="systemctl stop " + MINION_UNIT, lxc_path=node["lxc_path"])
        except CorpusError as exc:  # no container, or not running: no minion to stop
            ctx.log("minion not stopped: {}".format(exc))
    ctl.delete_key(clip["minion_id"])


def highstate(ctl, ctx):
    clip = ctx.clipboard
    try:
        ret = ctl.call(clip["minion_id"], "state.apply", timeout=600)
    except CorpusError as exc:
        # A fresh minion may miss a publication while it reconnects; a highstate is
        # safe to apply again.
        if "did not answer" not in str(exc):
            raise
        ctx.log("{}; applying it again".format(exc))
        ret = ctl.call(clip["minion_id"], "state.apply", timeout=600)
    ctx.log("highstate: {} states applied".format(len(ret) if isinstance(ret, dict) else "no"))


STEPS = {
    "salt:install_minion": (install_minion, remove_minion),
    "salt:highstate": (highstate, None),
    "salt:remove_minion": (remove_minion, None),
}
