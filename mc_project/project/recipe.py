"""The deploy as data: for each mode, each phase and corpus's own steps around it.

This is the README's mode table. A phase is either skipped in a mode or run as
``before`` steps, the project's states for the phase, then ``after`` steps. The steps
themselves (what they do, how they are undone) are in ``steps.py``; the engine only
walks this table.
"""

PHASES = ("backup", "gather_variables", "pre_install", "configure", "build", "post_build",
          "bundle", "deploy", "post_deploy", "post_install")
ALL_PHASES = PHASES + ("rollback",)

SKIP = None


def _phase(before=(), after=()):
    return {"before": tuple(before), "after": tuple(after)}


_COMMON = {
    "backup": _phase(before=["snapshot_data"]),
    "gather_variables": _phase(),
    "pre_install": _phase(),
    "configure": _phase(),
    # The Procfile's release: command runs, then the new release starts beside the live
    # one, on a port of its own...
    "deploy": _phase(before=["run_release"], after=["start_new"]),
    # ...its migrations (post_deploy) run, it must pass its health check, and only then
    # does traffic move to it.
    "post_deploy": _phase(after=["move_traffic"]),
    "post_install": _phase(),
}

RECIPES = {
    "editable": dict(_COMMON, **{
        "build": _phase(before=["sync_checkout", "install_dependencies"]),
        "post_build": _phase(),
        "bundle": SKIP,
    }),
    "cooking": dict(_COMMON, **{
        "build": _phase(before=["install_dependencies"]),
        "post_build": _phase(),
        "bundle": _phase(before=["make_release", "pack_bundle"]),
    }),
    "final": dict(_COMMON, **{
        "build": SKIP,
        "post_build": SKIP,
        "bundle": _phase(before=["make_release"]),
    }),
}

# Once the deploy is committed (recorded as a success), the old release drains and
# stops; a failure there is only a warning.
AFTER_COMMIT = ("retire_old",)


def runs(mode, phase):
    return RECIPES[mode][phase] is not SKIP


def steps(mode, phase, when):
    entry = RECIPES[mode][phase]
    return () if entry is SKIP else entry[when]
