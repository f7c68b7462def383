"""``project:*``: the projects of an environment, their remotes, their files and their live release."""

from sqlalchemy import delete

from mc_project.common.vocabulary import PROJECTS_ROOT
from mc_project.controller import envs
from mc_project.controller.steps import pillar
from mc_project.inventory import db
from mc_project.inventory.models import Project


def init_project(ctl, ctx):
    clip = ctx.clipboard
    ctl.call(clip["minion_id"], "mc_project.init_project", clip["project"], timeout=300, again=True)
    clip["git_remote"] = "ssh://root@{}:{}{}/{}/git/project.git".format(
        clip["domain"], clip["ssh_port"], PROJECTS_ROOT, clip["project"])
    ctx.log("project {} remotes created: {}".format(clip["project"], clip["git_remote"]))


def register_project(ctl, ctx):
    """Record one more project of an environment, and give it its pillar."""
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        if clip["project"] not in [project.name for project in env.projects]:
            env.projects.append(Project(name=clip["project"]))
        pillar.set_project(sess, env, clip["project"], True)


def forget_project(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, clip["env_name"])
        if env is None:
            return
        sess.execute(delete(Project).where(Project.environment_id == env.id, Project.name == clip["project"]))
        pillar.set_project(sess, env, clip["project"], False)


def _project_dir(clip):
    return "{}/{}".format(PROJECTS_ROOT, clip["project"])


def stop_project(ctl, ctx):
    clip = ctx.clipboard
    if ctl.call(clip["minion_id"], "file.directory_exists", _project_dir(clip)):
        ctl.call(clip["minion_id"], "mc_project.stop", clip["project"], timeout=120)
        ctx.log("project {} stopped".format(clip["project"]))


def remove_project(ctl, ctx):
    clip = ctx.clipboard
    ctl.call(clip["minion_id"], "file.remove", _project_dir(clip), timeout=300)
    ctx.log("{} removed from {}".format(_project_dir(clip), clip["env_name"]))


def _live_release(ctl, clip):
    status = ctl.call(clip["minion_id"], "mc_project.status", clip["project"], timeout=60) or {}
    return status.get("release")


def rollback_project(ctl, ctx):
    """Ask the environment's minion to make ``release`` live; keep which one was live before."""
    clip = ctx.clipboard
    live = _live_release(ctl, clip)
    if live == clip["release"]:  # a resumed job whose switch was done before it was cut off
        ctx.log("release {} of {} is live already".format(clip["release"], clip["project"]))
        return
    clip["live_before"] = live or clip.get("live_before")
    record = ctl.call(clip["minion_id"], "mc_project.rollback", clip["project"], clip["release"], timeout=600)
    ctx.log("{} rolled back from {} to {} ({})".format(clip["project"], clip["live_before"], clip["release"],
                                                       (record or {}).get("id") or "no record"))


def restore_live_release(ctl, ctx):
    """Make the release that was live before the rollback live again (nothing when it still is:
    a rollback that failed left it live)."""
    clip = ctx.clipboard
    before = clip.get("live_before")
    if not before or _live_release(ctl, clip) == before:
        return
    ctl.call(clip["minion_id"], "mc_project.rollback", clip["project"], before, timeout=600)
    ctx.log("{} is live again on {}".format(before, clip["project"]))


DEPLOY_TIMEOUT = 1800


def deploy_project(ctl, ctx):
    """Deploy the project's deploy branch head again on the environment's minion (what
    ``salt-run mc_project.deploy`` does); the engine rolls a failed deploy back itself."""
    clip = ctx.clipboard
    record = ctl.call(clip["minion_id"], "mc_project.deploy", clip["project"], who=clip.get("who"),
                      timeout=DEPLOY_TIMEOUT) or {}
    clip["release"] = record.get("id")
    ctx.log("{} deployed as release {} ({})".format(clip["project"], record.get("id") or "none",
                                                     record.get("status") or "no status"))


STEPS = {
    "project:init": (init_project, None),
    "project:register": (register_project, forget_project),
    "project:stop": (stop_project, None),
    "project:remove": (remove_project, None),
    "project:forget": (forget_project, None),
    "project:rollback": (rollback_project, restore_live_release),
    "project:deploy": (deploy_project, None),
}
