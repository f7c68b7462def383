"""The controller's operations on environments, each run as a job.

Each function checks its request first (a bad one is refused in one sentence
and no job is made), then creates the job with the steps of ``envs`` and runs
it here, reporting each step through ``progress(line)``.
"""

import re

from sqlalchemy import select

from mc_project.controller import envs
from mc_project.errors import CorpusError
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import ComputeNode, Environment

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _run(ctl, kind, target, steps, clipboard, progress=None):
    def fire(tag, data):
        ctl.fire(tag, data)
        if progress is not None and "step" in data and data["status"] != "pending":
            progress("{} step {}/{} {}: {}".format(kind, data["step"], len(steps), data["name"], data["status"]))

    manager = ctl.jobs()
    manager.fire = fire
    state = manager.submit(kind, target, list(steps), clipboard)
    result = {"result": state["status"] == "success", "job": state["id"], "status": state["status"],
              "comment": state["message"],
              "steps": [{"step": "{}/{} {}".format(step["index"], len(steps), step["name"]),
                         "status": step["status"], "seconds": step["seconds"]} for step in state["steps"]]}
    return result, state


def init_env(ctl, name, env_type="dev", project=None, host=None, requester=None, disk_size_mb=None,
             progress=None):
    """Create environment ``name``; its UUID and access details when it worked."""
    clipboard = envs.check_init_request(ctl, name, env_type, project=project, host=host,
                                        requester=requester,
                                        disk_size_mb=int(disk_size_mb) if disk_size_mb else None)
    result, state = _run(ctl, "init_env", name, envs.INIT_STEPS, clipboard, progress)
    if result["result"]:
        clip = state["clipboard"]
        result["uuid"] = clip["env_uuid"]
        result["access"] = envs.access_details(ctl, clip)
        if clip.get("mail_error"):
            result["mail"] = "The access mail was not sent: {}".format(clip["mail_error"])
        elif clip.get("requester"):
            result["mail"] = "Access details mailed to {}.".format(clip["requester"])
    return result


def destroy_env(ctl, name, progress=None):
    clipboard = envs.env_clipboard(ctl, name)
    result, _state = _run(ctl, "destroy_env", name, envs.DESTROY_STEPS, clipboard, progress)
    return result


def resize_env(ctl, name, size_mb, grow, progress=None):
    try:
        size_mb = int(size_mb) if not isinstance(size_mb, (bool, float)) else size_mb
    except (TypeError, ValueError):
        raise CorpusError("Size must be a whole number of MiB, not {!r}.".format(size_mb)) from None
    envs.check_disk_size(size_mb)
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        current = envs.environment(sess, name).disk_size_mb
    if current and grow and size_mb <= current:
        raise CorpusError("Enlarging {} needs a size above its {} MiB.".format(name, current))
    if current and not grow and size_mb >= current:
        raise CorpusError("Trimming {} needs a size below its {} MiB.".format(name, current))
    clipboard["size_mb"] = size_mb
    result, _state = _run(ctl, "enlarge" if grow else "trim", name, ("lxc:resize",), clipboard, progress)
    return result


def link_dns(ctl, name, domain, progress=None):
    domain = str(domain).strip().lower().rstrip(".")
    if not DOMAIN_RE.fullmatch(domain):
        raise CorpusError("{!r} is not a domain name.".format(domain))
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        for env in sess.scalars(select(Environment)):
            if domain in (env.domains or []):
                raise CorpusError("Domain {} already serves environment {}.".format(domain, env.name))
    if not clipboard["node"] or not clipboard["ip"]:
        raise CorpusError("Environment {} has no container to route to.".format(name))
    clipboard["new_domain"] = domain
    result, _state = _run(ctl, "link_dns", name, ("proxy:add_route", "pdns:add_records", "env:add_domain"),
                          clipboard, progress)
    return result


def add_project(ctl, name, project, progress=None):
    """Create the remotes of one more project in environment ``name``."""
    if not envs.PROJECT_NAME_RE.fullmatch(str(project)):
        raise CorpusError("Project name {!r} is not valid.".format(project))
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        if env.status != "active":
            raise CorpusError("Environment {} is {}, not active.".format(name, env.status))
        if project in [row.name for row in env.projects]:
            raise CorpusError("Environment {} already has project {}.".format(name, project))
        clipboard["ssh_port"] = env.ssh_nat_port
    clipboard["project"] = project
    result, state = _run(ctl, "add_project", name, ("project:register", "project:init"), clipboard, progress)
    if result["result"]:
        result["git_remote"] = state["clipboard"]["git_remote"]
    return result


def destroy_project(ctl, name, project, progress=None):
    """Stop and remove one project of environment ``name``; the environment stays."""
    clipboard = envs.env_clipboard(ctl, name)
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        if project not in [row.name for row in env.projects]:
            raise CorpusError("Environment {} has no project {}.".format(name, project))
    clipboard["project"] = project
    result, _state = _run(ctl, "destroy_project", name, ("project:stop", "project:remove", "project:forget"),
                          clipboard, progress)
    return result


def list_envs(ctl):
    with db.session(ctl.url) as sess:
        rows = []
        for env in sess.scalars(select(Environment).order_by(Environment.name)):
            node = sess.get(ComputeNode, env.node_id) if env.node_id else None
            rows.append({"name": env.name, "uuid": env.uuid, "type": env.env_type, "status": env.status,
                         "project": env.project, "projects": sorted(row.name for row in env.projects),
                         "node": node.name if node else None, "ip": env.ip,
                         "ssh": "{}:{}".format(node.address, env.ssh_nat_port) if node and env.ssh_nat_port else None,
                         "domains": list(env.domains or []), "disk_size_mb": env.disk_size_mb})
    return rows


def credentials(ctl, name):
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, name)
        secrets = secrets_crypto.values(sess, secrets_crypto.load(ctl.settings["secrets_key"]),
                                        "env:{}".format(env.uuid))
        node = sess.get(ComputeNode, env.node_id) if env.node_id else None
        return {"name": env.name, "root_password": secrets.get("root_password"),
                "ssh_private_key": secrets.get("ssh_private_key"),
                "ssh": "ssh -p {} root@{}".format(env.ssh_nat_port, (env.domains or [node.address if node else ""])[0])}
