"""``image:*``: building the next version of a container image (``controller/images.py``).

``image:register`` takes the version (building), ``image:build`` builds it on each node
(the nodes' logs kept on the version as they come, a failure's too), ``image:activate``
makes it ready: from then on it is its name's current version. A failed build leaves the
version ``failed`` with its log, and no image file on any node.
"""

from sqlalchemy import select

from mc_project.controller import images
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.image_models import Image, ImageNode
from mc_project.inventory.models import ComputeNode, utcnow

BUILD_TIMEOUT = 2400


def _image(sess, clip):
    return sess.scalar(select(Image).where(Image.name == clip["image_name"], Image.version == clip["image_version"]))


def register_image(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        if clip.get("image_version") is None:
            clip["image_version"] = images.next_version(sess, clip["image_name"])
            sess.add(Image(name=clip["image_name"], version=clip["image_version"], states=clip.get("states"),
                           states_digest=clip.get("states_digest"), status="building", who=clip.get("who"),
                           job_id=ctx.job_id, log=""))
    ctx.log("image {}:{} registered".format(clip["image_name"], clip["image_version"]))


def fail_image(ctl, ctx):
    """The version stays, ``failed``, with its log (a version number is never reused)."""
    clip = ctx.clipboard
    if clip.get("image_version") is None:
        return
    with db.session(ctl.url) as sess:
        image = _image(sess, clip)
        if image is not None and image.status in ("building", "ready"):
            image.status = "failed"
            image.message = image.message or "The build was undone."


def _keep(ctl, clip, log=None, message=None):
    with db.session(ctl.url) as sess:
        image = _image(sess, clip)
        if log:
            image.log = (image.log or "") + log
        if message:
            image.message = message


def build_on_nodes(ctl, ctx):
    clip = ctx.clipboard
    name, version = clip["image_name"], clip["image_version"]
    files = None
    if clip.get("states"):
        files, digest = images.read_tree(clip["states"])
        if digest != clip.get("states_digest"):
            ctx.log("the state tree changed since the build was asked for: building {}".format(digest))
            clip["states_digest"] = digest
            with db.session(ctl.url) as sess:
                _image(sess, clip).states_digest = digest
    lxc = ctl.settings["lxc"]
    built = {}
    for node in clip["nodes"]:
        golden = {"mirror": lxc["mirror"], "suite": lxc["suite"], "disk_size_mb": lxc["disk_size_mb"],
                  "wheelhouse": "{}/wheelhouse".format(node["prefix"])}
        try:
            answer = ctl.call(node["minion_id"], "mc_lxc.build_image", name=name, version=version,
                              lxc_path=node["lxc_path"], states=files, golden=golden, timeout=BUILD_TIMEOUT)
        except CorpusError as exc:
            message = "Building image {}:{} on node {} failed: {}".format(name, version, node["name"], exc)
            _keep(ctl, clip, "== node {} ==\n{}\n".format(node["name"], exc), message)
            raise CorpusError(message) from None
        _keep(ctl, clip, "== node {} ==\n{}".format(node["name"], answer.get("log") or ""))
        if not answer.get("result"):
            message = "Building image {}:{} on node {} failed: {}".format(
                name, version, node["name"], str(answer.get("message") or "no reason given").rstrip("."))
            _keep(ctl, clip, message=message)
            raise CorpusError(message)
        built[node["name"]] = {"digest": answer["digest"], "size_mb": answer["size_mb"]}
        ctx.log("image {}:{} built on {} in {} s ({} MiB used)".format(
            name, version, node["name"], answer.get("seconds"), answer["size_mb"]))
    clip["image_built"] = built


def remove_from_nodes(ctl, ctx):
    clip = ctx.clipboard
    if clip.get("image_version") is None:
        return
    for node in clip["nodes"]:
        try:
            ctl.call(node["minion_id"], "mc_lxc.remove_image", name=clip["image_name"],
                     version=clip["image_version"], lxc_path=node["lxc_path"], timeout=120)
        except CorpusError as exc:
            ctx.log("image {}:{} not removed from {}: {}".format(
                clip["image_name"], clip["image_version"], node["name"], exc))


def activate_image(ctl, ctx):
    clip = ctx.clipboard
    built = clip["image_built"]
    first = built[clip["nodes"][0]["name"]]
    with db.session(ctl.url) as sess:
        image = _image(sess, clip)
        image.status, image.built = "ready", utcnow()
        image.digest, image.size_mb = first["digest"], first["size_mb"]
        image.message = None
        for node_name in built:
            node_id = sess.scalar(select(ComputeNode.id).where(ComputeNode.name == node_name))
            if node_id is not None:
                sess.add(ImageNode(image_id=image.id, node_id=node_id))
    ctx.log("image {}:{} ready on {}".format(clip["image_name"], clip["image_version"], ", ".join(sorted(built))))


STEPS = {
    "image:register": (register_image, fail_image),
    "image:build": (build_on_nodes, remove_from_nodes),
    "image:activate": (activate_image, None),
}
