"""``salt:*``: an environment's minion, installed in its container, accepted, highstated."""

import salt.crypt

from mc_project.common.vocabulary import MINION_UNIT
from mc_project.controller import envs
from mc_project.errors import CorpusError

KEY_SIZE = 2048
MINION_TIMEOUT = 120


def install_minion(ctl, ctx):
    """Start the container's minion with a key pair made here and accepted before it runs: it
    is answering as soon as it connects, with no key to wait for and accept."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    private, public = salt.crypt.gen_keys(KEY_SIZE)
    ctx.undo_data["minion_id"] = clip["minion_id"]
    ctl.seed_key(clip["minion_id"], public)
    # Sealed to the node's key: the job's load, kept in the master's job cache, holds no key.
    sealed_private = ctl.seal(node["minion_id"], private)
    del private
    with ctl.listening("salt/minion/{}/start".format(clip["minion_id"])) as events:
        installed = ctl.call(node["minion_id"], "mc_lxc.install_minion", name=envs.container_of(clip),
                             master=ctl.settings["master_address"], minion_id=clip["minion_id"],
                             master_port=ctl.opts.get("ret_port", 4506),
                             publish_port=ctl.opts.get("publish_port", 4505),
                             wheelhouse="{}/wheelhouse".format(node["prefix"]), lxc_path=node["lxc_path"],
                             public_key=public, sealed_private_key=sealed_private,
                             sync_modules=ctl.serves_custom_modules(), timeout=900)
        if not ctl.wait_for_ping(clip["minion_id"], MINION_TIMEOUT, events):
            raise CorpusError("Minion {} did not answer within {} s.".format(clip["minion_id"], MINION_TIMEOUT))
    ctx.log("minion {} started with its key {} accepted in advance; venv: {}".format(
        clip["minion_id"], installed["fingerprint"], installed.get("path", "pip")))


# Salt's minion waits 5 s on SIGTERM for returns in flight; a minion being removed has none
# to send. Killed, it would be restarted (Restart=on-failure) but for the stop that follows,
# which finds it dead and cancels the restart.
STOP_AT_ONCE = "systemctl kill --signal=SIGKILL {unit}; systemctl stop {unit}".format(unit=MINION_UNIT)


def remove_minion(ctl, ctx):
    """Stop the container's minion, then forget its key (a running minion would offer it again)."""
    clip = ctx.clipboard
    node = clip.get("node")
    if node:
        try:
            ctl.call(node["minion_id"], "mc_lxc.attach", name=envs.container_of(clip),
                     cmd=STOP_AT_ONCE, lxc_path=node["lxc_path"])
        except CorpusError as exc:  # no container, or not running: no minion to stop
            ctx.log("minion not stopped: {}".format(exc))
    ctl.delete_key(clip["minion_id"])


def highstate(ctl, ctx):
    clip = ctx.clipboard
    # A fresh minion may miss the publication (reconnecting, or not subscribed yet): it is
    # published again once that is known, not after the 600 s a highstate may take.
    ret = ctl.call(clip["minion_id"], "state.apply", timeout=600, again=True)
    ctx.log("highstate: {} states applied".format(len(ret) if isinstance(ret, dict) else "no"))


STEPS = {
    # init_env starts the minion with the container (lxc:boot); jobs recorded before that
    # still name this step when they are resumed.
    "salt:install_minion": (install_minion, remove_minion),
    "salt:highstate": (highstate, None),
    "salt:remove_minion": (remove_minion, None),
}
