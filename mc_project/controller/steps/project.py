"""``project:*``: the projects of an environment, their remotes and their files."""

from sqlalchemy import delete

from mc_project.common.vocabulary import PROJECTS_ROOT
from mc_project.controller import envs
from mc_project.controller.steps import pillar
from mc_project.inventory import db
from mc_project.inventory.models import Project


def init_project(ctl, ctx):
    clip = ctx.clipboard
    ctl.call(clip["minion_id"], "mc_project.init_project", clip["project"], timeout=300)
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


STEPS = {
    "project:init": (init_project, None),
    "project:register": (register_project, forget_project),
    "project:stop": (stop_project, None),
    "project:remove": (remove_project, None),
    "project:forget": (forget_project, None),
}
