"""Named, versioned container images of a node, built from the golden image and a Salt state tree.

An image ``NAME:VERSION`` is a loop image file ``<lxc_path>/.corpus-images/NAME-VERSION.img``
(beside it ``.json``: what it is, and ``.log``: how its build went). A build copies the
node's golden image (the Debian template, corpus's packages and the minion's venv), mounts
the copy, applies the state tree inside it with the image's own ``salt-call --local``
(chrooted, in a mount namespace of its own, services kept from starting), takes away what
would give every clone the same identity, stamps ``/etc/corpus-image`` and renames the copy
into place: a failed build leaves only its log, never a half image.

``default:1`` is no file: it is the golden container itself (``lxc.golden``), so the usual
clone and its spare stay as they were.
"""

import base64
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import time

from mc_project.errors import CorpusError
from mc_project.node import images
from mc_project.node.shell import last_line, run

IMAGES_DIR = ".corpus-images"
IMAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
STAMP_PATH = "etc/corpus-image"
# Inside the image while it is built; removed before it is kept.
STATES_DIR = "tmp/corpus-image-states"
SALT_DIR = "tmp/corpus-image-salt"
POLICY_RC = "usr/sbin/policy-rc.d"
SALT_CALL = images.MINION_VENV + "/bin/salt-call"
BUILD_TIMEOUT = 1800
# What a state tree sent to a node may hold.
MAX_TREE_FILES = 500
MAX_TREE_BYTES = 8 * 1024 * 1024


def check_name(name):
    if not isinstance(name, str) or not IMAGE_NAME_RE.match(name):
        raise CorpusError("{!r} is not an image name (a lower-case letter, then up to 39 lower-case letters, "
                          "digits and dashes).".format(name))
    return name


def check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CorpusError("{!r} is not an image version (a whole number from 1).".format(version))
    return version


def image_file(lxc_path, name, version, suffix=".img"):
    return os.path.join(lxc_path, IMAGES_DIR, "{}-{}{}".format(check_name(name), check_version(version), suffix))


def read_log(lxc_path, name, version):
    try:
        with open(image_file(lxc_path, name, version, ".log"), encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- the state tree

def write_tree(files, target):
    """Write a state tree sent as ``{relative path: {"content": base64, "mode": int}}`` under
    ``target``; a path leaving it, or a tree too big, is refused."""
    if not isinstance(files, dict) or len(files) > MAX_TREE_FILES:
        raise CorpusError("A state tree is a mapping of at most {} files.".format(MAX_TREE_FILES))
    total = 0
    for relative, entry in sorted(files.items()):
        parts = str(relative).split("/")
        if not relative or str(relative).startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise CorpusError("{!r} is not a relative path inside the state tree.".format(relative))
        content = base64.b64decode(entry["content"])
        total += len(content)
        if total > MAX_TREE_BYTES:
            raise CorpusError("The state tree is over {} MiB.".format(MAX_TREE_BYTES // images.MIB))
        path = os.path.join(target, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(content)
        os.chmod(path, int(entry.get("mode", 0o644)) & 0o777)


def salt_call_args(files):
    """What salt-call runs: the highstate when the tree has a ``top.sls``, else every top-level
    ``.sls`` (and ``init.sls`` directory) of the tree, in name order."""
    if "top.sls" in files:
        return ["state.highstate"]
    names = sorted({path[:-4] if "/" not in path else path.split("/")[0]
                    for path in files if path.endswith(".sls") and ("/" not in path or path.endswith("/init.sls"))})
    if not names:
        raise CorpusError("The state tree has no .sls file.")
    return ["state.apply", ",".join(names)]


def minion_config():
    root = "/" + SALT_DIR
    return "\n".join([
        "id: corpus-image-build", "file_client: local", "file_roots:", "  base:", "    - /" + STATES_DIR,
        "cachedir: {}/cache".format(root), "pki_dir: {}/pki".format(root), "log_file: {}/log".format(root),
        "log_level_logfile: warning", "state_verbose: true", ""])


def state_report(stdout):
    """``(lines, failures)`` from salt-call's JSON: one line per state, the failed ones' comments."""
    try:
        answer = json.loads(stdout)["local"]
    except (ValueError, KeyError, TypeError):
        return [], []
    if isinstance(answer, list):  # salt-call's list of errors (a rendering failure)
        return ["error: {}".format(line) for line in answer], [str(line) for line in answer]
    if not isinstance(answer, dict):
        return [str(answer)], [str(answer)]
    lines, failures = [], []
    for key, ret in sorted(answer.items(), key=lambda item: item[1].get("__run_num__", 0)
                           if isinstance(item[1], dict) else 0):
        if not isinstance(ret, dict):
            continue
        ident = ret.get("__id__") or (key.split("_|-")[1] if "_|-" in key else key)
        comment = " ".join(str(ret.get("comment") or "").split())
        status = "failed" if ret.get("result") is False else ("changed" if ret.get("changes") else "ok")
        lines.append("{} {}: {}".format(status, ident, comment))
        if ret.get("result") is False:
            failures.append("{}: {}".format(ident, comment))
    return lines, failures


def apply_states(rootfs, files, log):
    """Apply the state tree ``files`` inside the mounted image ``rootfs``; the failed states'
    messages (empty when all passed)."""
    if not os.path.exists(os.path.join(rootfs, SALT_CALL.lstrip("/"))):
        raise CorpusError("The golden image has no minion venv ({}): the node's wheelhouse is needed to "
                          "apply a state tree.".format(SALT_CALL))
    args = salt_call_args(files)
    write_tree(files, os.path.join(rootfs, STATES_DIR))
    os.makedirs(os.path.join(rootfs, SALT_DIR), exist_ok=True)
    with open(os.path.join(rootfs, SALT_DIR, "minion"), "w", encoding="utf-8") as fh:
        fh.write(minion_config())
    with open(os.path.join(rootfs, POLICY_RC), "w", encoding="utf-8") as fh:
        fh.write("#!/bin/sh\nexit 101\n")  # no service starts while the image is built
    os.chmod(os.path.join(rootfs, POLICY_RC), 0o755)
    try:
        inner = ("/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "
                 "LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive {} --local -c /{} --out=json --retcode-passthrough "
                 "{}").format(SALT_CALL, SALT_DIR, " ".join(shlex.quote(arg) for arg in args))
        script = ("mount --rbind /dev {0}/dev && mount -t proc proc {0}/proc && mount -t sysfs -o ro sysfs {0}/sys "
                  "&& exec chroot {0} {1}").format(shlex.quote(rootfs), inner)
        log.append("$ salt-call --local {}".format(" ".join(args)))
        proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                   "Applying the state tree", check=False, timeout=BUILD_TIMEOUT)
        lines, failures = state_report(proc.stdout)
        log.extend(lines)
        if proc.stderr.strip():
            log.extend(proc.stderr.rstrip().splitlines()[-40:])
        if proc.returncode and not failures:
            failures = [last_line(proc) or "salt-call exited with status {}".format(proc.returncode)]
        return failures
    finally:
        for leftover in (STATES_DIR, SALT_DIR):
            shutil.rmtree(os.path.join(rootfs, leftover), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(rootfs, POLICY_RC))


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


# --------------------------------------------------------------------------- build and remove

def build(lxc_path, golden_rootdev, name, version, files=None):
    """Build image ``name:version`` from ``golden_rootdev`` and the state tree ``files`` (None:
    the golden image as it is). Returns ``{result, image, digest, size_mb, message, log,
    seconds}``; ``result`` False (with the failed states' or the error's ``message``) leaves no
    image, only the log."""
    started = time.monotonic()
    target = image_file(lxc_path, name, version)
    part, log_path = target + ".part", image_file(lxc_path, name, version, ".log")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    log = ["image {}:{} from {} ({})".format(name, version, golden_rootdev,
                                            "{} file(s) of states".format(len(files)) if files else "no states")]
    answer = {"result": False, "image": None, "digest": None, "size_mb": None, "message": None}
    try:
        if os.path.exists(target):
            raise CorpusError("Image {}:{} already exists on this node.".format(name, version))
        images.copy_sparse(golden_rootdev, part)
        with images.mounted_image(part) as rootfs:
            failures = apply_states(rootfs, files, log) if files else []
            if not failures:
                images.prepare_golden_rootfs(rootfs)
                with open(os.path.join(rootfs, STAMP_PATH), "w", encoding="utf-8") as fh:
                    fh.write("{}:{}\n".format(name, version))
        if failures:
            answer["message"] = "State(s) failed: {}".format("; ".join(failures))
        else:
            answer.update(digest=file_digest(part), size_mb=images.fs_usage_mb(part)[1])
            os.replace(part, target)
            answer.update(result=True, image=target)
            with open(image_file(lxc_path, name, version, ".json"), "w", encoding="utf-8") as fh:
                json.dump({"name": name, "version": version, "digest": answer["digest"],
                           "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, fh)
    except (CorpusError, OSError) as exc:
        answer["message"] = str(exc)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
    answer["seconds"] = round(time.monotonic() - started, 2)
    log.append("built in {} s: {}".format(answer["seconds"], target) if answer["result"]
               else "failed: {}".format(answer["message"]))
    answer["log"] = "\n".join(log) + "\n"
    with open(log_path, "w", encoding="utf-8") as fh:
        fh.write(answer["log"])
    return answer


def remove(lxc_path, name, version):
    """Delete image ``name:version`` and its files from this node; whether it was there."""
    found = False
    for suffix in (".img", ".json", ".log", ".img.part"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(image_file(lxc_path, name, version, suffix))
            found = found or suffix == ".img"
    return {"name": name, "version": version, "removed": found}


def remove_all(lxc_path):
    """Delete every image of this node (the node is being unlinked)."""
    shutil.rmtree(os.path.join(lxc_path, IMAGES_DIR), ignore_errors=True)
