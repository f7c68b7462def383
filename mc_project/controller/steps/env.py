"""``env:*``: an environment's own inventory row, from reserved to removed."""

from sqlalchemy import delete

from mc_project.controller import envs
from mc_project.controller.steps import pillar
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import Environment, Project


def register_env(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, clip["env_name"])
        if env is not None and env.uuid != clip.get("env_uuid"):
            raise CorpusError("An environment named {} already exists.".format(clip["env_name"]))
        if env is None:
            env = Environment(name=clip["env_name"], env_type=clip["env_type"], project=clip["project"],
                              requester=clip.get("requester"), disk_size_mb=clip["disk_size_mb"],
                              container=clip["env_name"], minion_id=clip["domain"],
                              domains=[clip["domain"]], status="creating")
            env.projects = [Project(name=clip["project"])]
            sess.add(env)
            sess.flush()
        clip["env_uuid"] = env.uuid
        clip["minion_id"] = env.minion_id
    ctx.log("environment {} reserved as {}".format(clip["env_name"], clip["env_uuid"]))


def unregister_env(ctl, ctx):
    name = ctx.clipboard["env_name"]
    with db.session(ctl.url) as sess:
        sess.execute(delete(Environment).where(Environment.name == name,
                                               Environment.uuid == ctx.clipboard.get("env_uuid")))


def activate_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        envs.environment(sess, ctx.clipboard["env_name"]).status = "active"


def deactivate_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, ctx.clipboard["env_name"])
        if env is not None:
            env.status = "creating"


def retire_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        envs.environment(sess, ctx.clipboard["env_name"]).status = "destroying"


def remove_env(ctl, ctx):
    with db.session(ctl.url) as sess:
        sess.execute(delete(Environment).where(Environment.name == ctx.clipboard["env_name"]))
    ctx.log("environment {} removed; its address, slot and ports are free".format(ctx.clipboard["env_name"]))


def add_domain(ctl, ctx):
    """Record a linked domain on the environment and in its pillar."""
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        if clip["new_domain"] not in env.domains:
            env.domains = list(env.domains) + [clip["new_domain"]]
        clip["extra_domains"] = list(env.domains)[1:]
        pillar.set_domains(sess, env)
    ctx.log("domain {} linked to {}".format(clip["new_domain"], clip["env_name"]))


def remove_domain(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, clip["env_name"])
        if env is None:
            return
        env.domains = [domain for domain in env.domains if domain != clip["new_domain"]]
        pillar.set_domains(sess, env)


STEPS = {
    "env:register": (register_env, unregister_env),
    "env:activate": (activate_env, deactivate_env),
    "env:retire": (retire_env, None),
    "env:remove": (remove_env, None),
    "env:add_domain": (add_domain, remove_domain),
}
