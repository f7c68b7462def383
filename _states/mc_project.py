"""Salt states for corpus projects: ``mc_project.present`` and ``mc_project.deployed``.

.. code-block:: yaml

    myapp:
      mc_project.present: []

    myapp-live:
      mc_project.deployed:
        - name: myapp
"""

__virtualname__ = "mc_project"


def __virtual__():
    if "mc_project.init_project" not in __salt__:
        return False, "the mc_project execution module is not available"
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def present(name, projects_root=None, branch="main"):
    """
    Ensure project ``name`` has its layout, bare remotes and hooks.

    CLI Example:

    .. code-block:: bash

        salt-call --local state.single mc_project.present myapp
    """
    from mc_project.common.vocabulary import PROJECTS_ROOT  # pylint: disable=import-outside-toplevel
    from mc_project.project import layout  # pylint: disable=import-outside-toplevel
    from mc_project.errors import CorpusError  # pylint: disable=import-outside-toplevel

    ret = _ret(name)
    root = projects_root or __salt__["config.get"]("mc_project:projects_root", PROJECTS_ROOT)
    try:
        planned = layout.planned_changes(name, root, __salt__["mc_project.hook_salt_call"]())
    except CorpusError as exc:
        return dict(ret, result=False, comment=str(exc))
    if not planned:
        return dict(ret, comment="Project {} is already set up.".format(name))
    if __opts__["test"]:
        return dict(ret, result=None, changes=planned,
                    comment="Project {} would be set up.".format(name))
    try:
        changes = __salt__["mc_project.init_project"](name, projects_root=projects_root, branch=branch)
    except Exception as exc:  # CommandExecutionError carries the user-facing sentence
        return dict(ret, result=False, comment=str(exc))
    return dict(ret, changes=changes, comment="Project {} set up.".format(name))


def deployed(name, rev=None, projects_root=None):
    """
    Ensure the deploy branch head (or ``rev``) of project ``name`` is live; deploys
    it when it is not, with automatic rollback on failure.

    CLI Example:

    .. code-block:: bash

        salt-call --local state.single mc_project.deployed myapp
    """
    ret = _ret(name)
    try:
        status = __salt__["mc_project.status"](name, projects_root=projects_root)
        wanted = rev or __salt__["mc_project.branch_head"](name, projects_root=projects_root)
    except Exception as exc:
        return dict(ret, result=False, comment=str(exc))
    if not wanted:
        return dict(ret, comment="Project {} has no commit to deploy yet.".format(name))
    if status.get("commit") == wanted and status.get("live"):
        return dict(ret, comment="{} {} is already live.".format(name, wanted[:12]))
    change = {"commit": {"old": status.get("commit"), "new": wanted}}
    if __opts__["test"]:
        return dict(ret, result=None, changes=change,
                    comment="{} {} would be deployed.".format(name, wanted[:12]))
    try:
        record = __salt__["mc_project.deploy"](name, rev=wanted, projects_root=projects_root)
    except Exception as exc:
        return dict(ret, result=False, comment=str(exc))
    change["release"] = record.get("id")
    change["phases"] = record.get("phases")
    return dict(ret, changes=change, comment="{} {} deployed as {}.".format(
        name, wanted[:12], record.get("id")))
