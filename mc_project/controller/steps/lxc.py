"""``lxc:*``: an environment's container on its node (through ``mc_lxc``)."""

from sqlalchemy import update

from mc_project.controller import envs, images
from mc_project.controller.steps import creds, minion
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Environment


def clone_container(ctl, ctx):
    """Clone container ``clip["env_name"]`` on ``clip["node"]`` from image ``clip["image"]``
    (``NAME``, ``NAME:VERSION``; None: the default image's current version). The image's
    ``name:version`` goes to ``clip["image_ref"]`` and ``undo_data["image_ref"]``, and on the
    environment whose container this is (``Environment.image``)."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    lxc = ctl.settings["lxc"]
    ref, image = images.clone_source(ctl.url, clip.get("image"), node["name"])
    extra = {} if image is None else {"image": image}  # the golden image: the call as it always was
    # One call: the golden image made sure of (built, or its venv baked again, only when
    # missing or stale), then the container cloned from it (or the spare renamed).
    made = ctl.call(node["minion_id"], "mc_lxc.clone", name=envs.container_of(clip), lxc_path=node["lxc_path"],
                    disk_size_mb=clip["disk_size_mb"], exist_ok=True, spare=lxc["spare"],
                    golden={"mirror": lxc["mirror"], "suite": lxc["suite"], "disk_size_mb": lxc["disk_size_mb"],
                            "wheelhouse": "{}/wheelhouse".format(node["prefix"])}, timeout=1800, **extra)
    if image is None:
        golden = made.get("golden") or {}
        ctx.log("golden image {} ({}; minion venv {})".format(
            golden.get("name"), "built" if golden.get("built") else "cached", golden.get("venv", "not asked for")))
    clip["image_ref"] = ctx.undo_data["image_ref"] = ref
    with db.session(ctl.url) as sess:
        sess.execute(update(Environment).where(Environment.container == envs.container_of(clip)).values(image=ref))
    ctx.log("container {} {} on {} (image {})".format(
        envs.container_of(clip), "taken from the spare" if made.get("spare") else "cloned", node["name"], ref))


def destroy_container(ctl, ctx):
    node = ctx.clipboard.get("node")
    if node:
        ctl.call(node["minion_id"], "mc_lxc.destroy", name=envs.container_of(ctx.clipboard),
                 lxc_path=node["lxc_path"], timeout=300)


def boot_container(ctl, ctx):
    """Configure the stopped container (address, root's credentials, a minion that starts with
    it), have the master accept that minion's key, start it, and wait until its SSH server and
    its minion answer: nothing is then run inside it to set it up."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    ctx.undo_data["minion_id"] = clip["minion_id"]
    booted = {"master": ctl.settings["master_address"], "minion_id": clip["minion_id"],
              "wheelhouse": "{}/wheelhouse".format(node["prefix"]),
              "publish_port": ctl.opts.get("publish_port", 4505), "master_port": ctl.opts.get("ret_port", 4506),
              "sync_modules": ctl.serves_custom_modules()}
    made = ctl.call(node["minion_id"], "mc_lxc.configure", name=envs.container_of(clip), hostname=clip["env_name"],
                    address="{}/{}".format(clip["ip"], clip["prefixlen"]), gateway=clip["gateway"],
                    bridge=node["bridge"], lxc_path=node["lxc_path"],
                    sealed_password_hash=creds.sealed_password_hash(ctl, clip),
                    root_key=clip["ssh_public_key"], booted_minion=booted)
    if made.get("changed") is False:
        # Started by an earlier run of this step: what it did is read back, the minion restarted.
        creds.install_credentials(ctl, ctx)
        minion.install_minion(ctl, ctx)
        return
    clip["host_keys"] = made["host_keys"]
    at_boot = made.get("minion") == "at boot"
    if at_boot:
        ctl.seed_key(clip["minion_id"], made["minion_public_key"])
    with ctl.listening("salt/minion/{}/start".format(clip["minion_id"])) as events:
        ctl.call(node["minion_id"], "mc_lxc.start", name=envs.container_of(clip), lxc_path=node["lxc_path"],
                 wait=120, timeout=300)
        ctx.log("container {} started at {}".format(envs.container_of(clip), clip["ip"]))
        if at_boot:
            if not ctl.wait_for_ping(clip["minion_id"], minion.MINION_TIMEOUT, events):
                raise CorpusError("Minion {} did not answer within {} s.".format(
                    clip["minion_id"], minion.MINION_TIMEOUT))
            ctx.log("minion {} started with the container, its key accepted in advance".format(clip["minion_id"]))
    if not at_boot:
        ctx.log("minion not started at boot: {}".format(made.get("minion")))
        minion.install_minion(ctl, ctx)


def resize_container(ctl, ctx):
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    ret = ctl.call(node["minion_id"], "mc_lxc.resize", name=envs.container_of(clip), size_mb=clip["size_mb"],
                   lxc_path=node["lxc_path"], timeout=600)
    with db.session(ctl.url) as sess:
        envs.environment(sess, clip["env_name"]).disk_size_mb = clip["size_mb"]
    ctx.log("rootfs of {} now {} MiB ({})".format(clip["env_name"], clip["size_mb"], ret))


STEPS = {
    "lxc:clone": (clone_container, destroy_container),
    "lxc:boot": (boot_container, minion.remove_minion),
    "lxc:destroy": (destroy_container, None),
    "lxc:resize": (resize_container, None),
}
