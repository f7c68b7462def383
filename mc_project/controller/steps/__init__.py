"""The controller's job steps, one module per provider.

Each module exports ``STEPS``: ``{"provider:action": (do, undo or None)}``, plain
functions of ``(ctl, ctx)`` (the ``runtime.Controller`` and the job's
``StepContext``). ``registry(ctl)`` binds them all to one controller for
``mc_project.jobs``; ``operations.py`` says which steps make each job.

A step that raises has its own undo run first (it may have done part of its
work), unless its module sets ``UNDO_OWN_FAILURE = False``.
"""

from mc_project.health import compliance_runs
from mc_project.controller.steps import (
    creds,
    dns,
    env,
    image,
    lxc,
    mail,
    minion,
    nat,
    node,
    pillar,
    placement,
    playbook,
    project,
    proxy,
    redeploy,
    site,
    state_run,
)

PROVIDERS = (env, placement, lxc, creds, nat, proxy, dns, pillar, minion, project, mail, node, state_run, playbook,
             compliance_runs, site, redeploy, image)


def registry(ctl):
    """Every step of every provider, bound to the controller ``ctl``."""
    steps = {}
    for provider in PROVIDERS:
        own_undo = getattr(provider, "UNDO_OWN_FAILURE", True)
        for name, (do, undo) in provider.STEPS.items():
            steps[name] = (_bound(ctl, do, undo if own_undo else None), _bound(ctl, undo) if undo else None)
    return steps


def _bound(ctl, step, undo=None):
    """``step`` bound to ``ctl``; when it raises, ``undo`` takes back what it did first."""
    def run(ctx):
        try:
            return step(ctl, ctx)
        except Exception:
            if undo is not None:
                try:
                    undo(ctl, ctx)
                except Exception as exc:  # the step's own failure is what the job reports
                    ctx.log("cleaning up after the failure failed too: {}".format(exc))
            raise
    run.__name__ = step.__name__
    return run
