"""Salt runner: deploy corpus projects on minions from the master."""

import salt.client

__virtualname__ = "mc_project"


def __virtual__():
    return __virtualname__


def deploy(target, name, rev=None, tgt_type="glob", timeout=600):
    """
    Deploy project ``name`` on the minions matching ``target`` and return, per
    minion, the result, the release and each phase's result and time. When any
    minion failed, the return also has ``retcode: 1`` and salt-run exits 1.

    CLI Example:

    .. code-block:: bash

        salt-run mc_project.deploy web1 myapp
    """
    client = salt.client.get_local_client(__opts__["conf_file"])
    kwargs = {"rev": rev} if rev else {}
    returns = client.cmd(target, "mc_project.deploy", [name], tgt_type=tgt_type,
                         timeout=timeout, kwarg=kwargs, full_return=True)
    if not returns:
        __context__["retcode"] = 1
        return {"result": False, "retcode": 1,
                "comment": "No minion matched {} or answered.".format(target)}
    out = {}
    failed = False
    for minion, ret in returns.items():
        data = ret.get("ret")
        ok = ret.get("retcode", 0) == 0 and isinstance(data, dict)
        failed = failed or not ok
        if ok:
            out[minion] = {"result": True, "release": data.get("id"), "commit": data.get("commit"),
                           "status": data.get("status"), "url": data.get("url"),
                           "phases": data.get("phases", [])}
        else:
            out[minion] = {"result": False, "comment": str(data)}
    if failed:
        __context__["retcode"] = 1
        # salt-run takes its exit code from a "retcode" key of the return, not from
        # __context__ (which only orchestration reads).
        out["retcode"] = 1
    return out
