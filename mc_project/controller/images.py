"""Container images as the controller keeps them: the catalog, builds (a job), removal, and
which image (``name:version``) a new container is cloned from.

``default`` is the image every environment gets unless it names another; its version 1 is
the nodes' golden image itself (``golden``, in the catalog from migration 0012 on), present
on every node and cloned as before (with its spare). ``corpus images build NAME [--states
DIR]`` makes the next version of NAME on the nodes (``steps/image.py``); NAME's current
version is its highest ready one.
"""

import base64
import hashlib
import os
import re

from sqlalchemy import func, select

from mc_project.controller import envs
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.fleet_rules import Conflict, NotFound
from mc_project.inventory.image_models import Image, ImageNode
from mc_project.inventory.models import ComputeNode, Environment
from mc_project.node import image_build

DEFAULT_IMAGE = "default"
BUILD_IMAGE = ("image:register", "image:build", "image:activate")
REF_RE = re.compile(r"^(?P<name>[^:\s]+)(?::(?P<version>[0-9]{1,9}))?$")
# Not part of a state tree sent to a node.
SKIPPED = (".git", ".hg", ".svn", "__pycache__")


# --------------------------------------------------------------------------- names and the catalog

def parse_ref(ref):
    """``(name, version or None)`` from ``NAME`` or ``NAME:VERSION``; a bad one in one sentence."""
    found = REF_RE.match(str(ref or ""))
    if not found:
        raise CorpusError("{!r} is not an image (NAME or NAME:VERSION).".format(ref))
    version = found.group("version")
    return image_build.check_name(found.group("name")), int(version) if version else None


def ref_of(image):
    return "{}:{}".format(image.name, image.version)


def current(sess, name):
    """Image ``name``'s current version (its highest ready one), or None."""
    return sess.scalar(select(Image).where(Image.name == name, Image.status == "ready")
                       .order_by(Image.version.desc()).limit(1))


def find(sess, ref, ready=True):
    """The image ``ref`` names (``NAME``: its current version); NotFound in one sentence.
    Without ``ready``, a version of any status (a removed one's record and log stay)."""
    name, version = parse_ref(ref)
    if version is None:
        image = current(sess, name)
        if image is None:
            raise NotFound("No ready image named {}.".format(name))
        return image
    image = sess.scalar(select(Image).where(Image.name == name, Image.version == version))
    if image is None or (ready and image.status != "ready"):
        raise NotFound("No {}image {}:{}.".format("ready " if ready else "", name, version))
    return image


def node_names(sess, image):
    """The nodes holding ``image`` (a golden one: every node)."""
    if image.golden:
        return sess.scalars(select(ComputeNode.name).order_by(ComputeNode.name)).all()
    return sess.scalars(select(ComputeNode.name).join(ImageNode, ImageNode.node_id == ComputeNode.id)
                        .where(ImageNode.image_id == image.id).order_by(ComputeNode.name)).all()


def users(sess, image):
    """The environments cloned from ``image``."""
    return sess.scalars(select(Environment.name).where(Environment.image == ref_of(image))
                        .order_by(Environment.name)).all()


def _iso(moment):
    return moment.isoformat() if moment else None


def record(sess, image, with_log=False):
    """What the API and the CLI show of one version."""
    answer = {"name": image.name, "version": image.version, "ref": ref_of(image), "status": image.status,
              "current": (current(sess, image.name) or image).id == image.id and image.status == "ready",
              "states": image.states or "built-in", "states_digest": image.states_digest, "digest": image.digest,
              "golden": image.golden, "who": image.who, "created": _iso(image.created), "built": _iso(image.built),
              "size_mb": image.size_mb, "job_id": image.job_id, "message": image.message,
              "nodes": list(node_names(sess, image)), "environments": list(users(sess, image))}
    if with_log:
        answer["log"] = image.log or ""
    return answer


def list_images(url, name=None):
    """Every version not removed, by name then version (``name``: that image's only)."""
    with db.session(url) as sess:
        query = select(Image).where(Image.status != "removed")
        if name is not None:
            query = query.where(Image.name == parse_ref(name)[0])
        return [record(sess, image) for image in sess.scalars(query.order_by(Image.name, Image.version))]


def get_image(url, ref, with_log=False):
    with db.session(url) as sess:
        return record(sess, find(sess, ref, ready=False), with_log=with_log)


# --------------------------------------------------------------------------- what a clone copies

def for_environment(sess, ref, host=None):
    """The image a new environment is cloned from (``ref``, None: ``default``'s current version)
    and the node it may go on: ``host`` when it holds the image, else, when ``host`` is None
    and the image is not on every node, the one holding it with the most free slots."""
    image = find(sess, ref or DEFAULT_IMAGE)
    if image.golden:
        return image, host
    holders = node_names(sess, image)
    if host is not None:
        if host not in holders:
            raise CorpusError("Image {} is not on node {} (it is on {}).".format(
                ref_of(image), host, ", ".join(holders) or "no node"))
        return image, host
    rooms = []
    for name in holders:
        node = sess.scalar(select(ComputeNode).where(ComputeNode.name == name))
        free = node.slots - envs.live_count(sess, node)
        if node.status == "active" and free > 0:
            rooms.append((-free, name))
    if not rooms:
        raise CorpusError("No node holding image {} has a free slot.".format(ref_of(image)))
    return image, sorted(rooms)[0][1]


def clone_source(url, ref, node_name):
    """What ``mc_lxc.clone`` is given for image ``ref`` (None: ``default``) on node
    ``node_name``: ``(ref "name:version", the image mapping or None for the golden image)``."""
    with db.session(url) as sess:
        image = find(sess, ref or DEFAULT_IMAGE)
        if image.golden:
            return ref_of(image), None
        if node_name not in node_names(sess, image):
            raise CorpusError("Image {} is not on node {}.".format(ref_of(image), node_name))
        return ref_of(image), {"name": image.name, "version": image.version, "golden": False}


# --------------------------------------------------------------------------- builds

def read_tree(path):
    """The state tree under directory ``path`` as sent to a node (``{relative path: {content
    (base64), mode}}``) and its digest; one sentence when it is not one."""
    if not isinstance(path, str) or not os.path.isabs(path):
        raise CorpusError("The state tree must be an absolute path on the controller, not {!r}.".format(path))
    if not os.path.isdir(path):
        raise CorpusError("There is no directory {} on the controller.".format(path))
    files, digest, total = {}, hashlib.sha256(), 0
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED)
        for name in sorted(names):
            full = os.path.join(root, name)
            if not os.path.isfile(full) or os.path.islink(full):
                continue
            relative = os.path.relpath(full, path).replace(os.sep, "/")
            try:
                with open(full, "rb") as fh:
                    content = fh.read(image_build.MAX_TREE_BYTES + 1)
            except OSError as exc:
                raise CorpusError("Reading {} failed: {}.".format(full, exc.strerror)) from None
            total += len(content)
            if total > image_build.MAX_TREE_BYTES or len(files) >= image_build.MAX_TREE_FILES:
                raise CorpusError("The state tree {} is over {} files or {} MiB.".format(
                    path, image_build.MAX_TREE_FILES, image_build.MAX_TREE_BYTES >> 20))
            mode = os.stat(full).st_mode & 0o777
            files[relative] = {"content": base64.b64encode(content).decode(), "mode": mode}
            digest.update("{}\0{:o}\0".format(relative, mode).encode() + content + b"\0")
    image_build.salt_call_args(files)  # refuses a tree with no .sls
    return files, "sha256:" + digest.hexdigest()


def build_request(ctl, name, states=None, node=None, who=None):
    """Refuse a bad build in one sentence before any job exists; return its clipboard."""
    name = image_build.check_name(name)
    states_digest = None
    if states is not None:
        states = os.path.normpath(states) if isinstance(states, str) else states
        states_digest = read_tree(states)[1]
    with db.session(ctl.url) as sess:
        if sess.scalar(select(Image.id).where(Image.name == name, Image.status == "building")) is not None:
            raise Conflict("Image {} is being built already.".format(name))
        query = select(ComputeNode).where(ComputeNode.status == "active").order_by(ComputeNode.name)
        if node is not None:
            found = sess.scalar(select(ComputeNode).where(ComputeNode.name == str(node)))
            if found is None:
                raise NotFound("No compute node named {}.".format(node))
            query = query.where(ComputeNode.id == found.id)
        nodes = [envs.node_info(found) for found in sess.scalars(query)]
        if not nodes:
            raise CorpusError("No active compute node to build image {} on.".format(name) if node is None
                              else "Compute node {} is not active.".format(node))
    return {"image_name": name, "states": states, "states_digest": states_digest, "nodes": nodes, "who": who}


def build_image(ctl, name, states=None, node=None, who=None, progress=None):
    """Build the next version of image ``name`` (from the state tree in directory ``states``
    on the controller; None: the golden image as it is) on ``node`` (None: every active node)."""
    from mc_project.controller import operations  # operations imports this module

    clipboard = build_request(ctl, name, states, node, who)
    result, state = operations._run(ctl, "build_image", name, BUILD_IMAGE, clipboard, progress)
    if "image_version" in state["clipboard"]:
        result["image"] = "{}:{}".format(name, state["clipboard"]["image_version"])
    return result


# --------------------------------------------------------------------------- removal

def removal_refusal(sess, image):
    """Why ``image`` may not be removed (one sentence), or None."""
    using = users(sess, image)
    if using:
        return "Image {} is used by environment(s) {}: destroy or redeploy them first.".format(
            ref_of(image), ", ".join(using))
    if image.golden:
        return "Image {} is the nodes' golden image and cannot be removed.".format(ref_of(image))
    if image.name == DEFAULT_IMAGE and image.status == "ready" and current(sess, DEFAULT_IMAGE).id == image.id:
        return "Image {} is the default image's current version: build another default first.".format(
            ref_of(image))
    if image.status == "building":
        return "Image {} is being built.".format(ref_of(image))
    return None


def remove_image(ctl, ref):
    """Remove ``NAME:VERSION`` (``NAME``: every version of it) from its nodes and mark it
    removed (its log stays readable); refused, with nothing removed, while one is in use."""
    with db.session(ctl.url) as sess:
        name, version = parse_ref(ref)
        query = select(Image).where(Image.name == name, Image.status != "removed")
        if version is not None:
            query = query.where(Image.version == version)
        found = sess.scalars(query.order_by(Image.version)).all()
        if not found:
            raise NotFound("No image {}.".format(ref))
        for image in found:
            refusal = removal_refusal(sess, image)
            if refusal:
                raise Conflict(refusal)
        targets = []
        for image in found:
            holders = sess.scalars(select(ComputeNode).join(ImageNode, ImageNode.node_id == ComputeNode.id)
                                   .where(ImageNode.image_id == image.id)).all()
            targets.append((image.id, image.name, image.version, [envs.node_info(node) for node in holders]))
    removed = []
    for image_id, image_name, image_version, holders in targets:
        for node in holders:
            ctl.call(node["minion_id"], "mc_lxc.remove_image", name=image_name, version=image_version,
                     lxc_path=node["lxc_path"], timeout=120)
        with db.session(ctl.url) as sess:
            image = sess.get(Image, image_id)
            image.status = "removed"
            sess.query(ImageNode).filter(ImageNode.image_id == image_id).delete()
        removed.append({"ref": "{}:{}".format(image_name, image_version),
                        "nodes": [node["name"] for node in holders]})
    return {"removed": removed}


def next_version(sess, name):
    return (sess.scalar(select(func.max(Image.version)).where(Image.name == name)) or 0) + 1
