"""``pillar:*``: what an environment's minion sees as its pillar (served by the corpus ext_pillar)."""

from sqlalchemy import delete, select

from mc_project.common.vocabulary import APP_PORT, MODE_OF_ENV, PROJECTS_ROOT
from mc_project.inventory import db
from mc_project.inventory.models import Pillar


def env_pillar(clip, node):
    """What the environment's minion sees as its pillar (served by the corpus ext_pillar)."""
    return {
        "corpus": {
            "role": "environment",
            "env": {"name": clip["env_name"], "uuid": clip["env_uuid"], "type": clip["env_type"],
                    "mode": MODE_OF_ENV[clip["env_type"]], "domain": clip["domain"],
                    "domains": [clip["domain"]] + clip.get("extra_domains", []),
                    "node": node["name"], "address": clip["ip"], "project": clip["project"]},
            "dns": {"fqdn": clip["domain"], "wildcard": "*." + clip["domain"]},
            "firewall": {"ssh": {"node": node["address"], "external_port": clip.get("ssh_port"),
                                 "internal_port": 22},
                         "http": {"node_port": node["http_port"], "internal_port": APP_PORT}},
            "credentials": {"root_authorized_keys": [clip["ssh_public_key"]] if clip.get("ssh_public_key") else [],
                            "secrets": ["root_password", "ssh_private_key"]},
        },
        "mc_project": {"projects_root": PROJECTS_ROOT},
        "makina-projects": {clip["project"]: {"env": clip["env_type"], "bind": "0.0.0.0",
                                              "port": APP_PORT}},
    }


def save(sess, minion_id, data):
    """Make ``data`` minion ``minion_id``'s pillar (its row made or replaced)."""
    row = sess.scalar(select(Pillar).where(Pillar.minion_id == minion_id))
    if row is None:
        sess.add(Pillar(minion_id=minion_id, data=data))
    else:
        row.data = data


def write_pillar(ctl, ctx):
    clip = ctx.clipboard
    data = env_pillar(clip, ctx.clipboard["node"])
    with db.session(ctl.url) as sess:
        save(sess, clip["minion_id"], data)
    ctx.log("pillar written for minion {}".format(clip["minion_id"]))


def remove_pillar(ctl, ctx):
    with db.session(ctl.url) as sess:
        sess.execute(delete(Pillar).where(Pillar.minion_id == ctx.clipboard["minion_id"]))


def set_domains(sess, env):
    """Keep the environment's pillar in step with its domains."""
    row = sess.scalar(select(Pillar).where(Pillar.minion_id == env.minion_id))
    if row is not None:
        data = dict(row.data)
        data["corpus"] = dict(data["corpus"], env=dict(data["corpus"]["env"], domains=list(env.domains)))
        row.data = data


def set_project(sess, env, project, present):
    row = sess.scalar(select(Pillar).where(Pillar.minion_id == env.minion_id))
    if row is None:
        return
    data = dict(row.data)
    projects = dict(data.get("makina-projects") or {})
    if present:
        projects[project] = {"env": env.env_type, "bind": "0.0.0.0", "port": APP_PORT}
    else:
        projects.pop(project, None)
    data["makina-projects"] = projects
    row.data = data


STEPS = {
    "pillar:write": (write_pillar, remove_pillar),
    "pillar:remove": (remove_pillar, None),
}
