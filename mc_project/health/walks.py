"""Site walks: does every domain of a site answer through its front, and does every
backend answer its health path directly?

A site is named by a compute node (every domain its proxy routes) or by a domain
(the environments serving that domain or a name under it). Both are read from the
inventory: a front target is the node's proxy (``address:http_port``) asked with the
domain as ``Host``; a backend target is the environment's app asked directly
(``ip:APP_PORT``). Each environment's host may say where its app answers with the
inventory variables ``health_path`` (default ``/``) and ``app_port``.

``walk(targets)`` asks all targets at once (httpx, asyncio): a walk of 20 backends
takes about as long as the slowest one, not the sum. A target is OK when it answers
2xx or 3xx within the timeout; anything else is recorded with its reason.
"""

import asyncio
import time

import httpx
from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.health import app_health
from mc_project.inventory.fleet_rules import HOST_NAME_RE, NotFound
from mc_project.inventory.models import ComputeNode, Environment

DEFAULT_TIMEOUT = 5.0


def check_site(site):
    site = str(site).strip().lower().rstrip(".")
    if not HOST_NAME_RE.fullmatch(site):
        raise CorpusError("{!r} is not a site: name a compute node or a domain.".format(site))
    return site


def _serves(env, domain):
    return any(name == domain or name.endswith("." + domain) for name in env.domains or [])


def site_targets(sess, site, tenant_ids):
    """``{"site", "kind", "tenant_id", "targets": [...]}``: what a walk of ``site`` asks.

    Only environments of ``tenant_ids`` count; a site with none of them is not found.
    """
    site = check_site(site)
    node = sess.scalar(select(ComputeNode).where(ComputeNode.name == site))
    query = select(Environment).where(Environment.tenant_id.in_(list(tenant_ids)),
                                      Environment.ip.is_not(None), Environment.node_id.is_not(None))
    if node is not None:
        envs = sess.scalars(query.where(Environment.node_id == node.id).order_by(Environment.name)).all()
        kind = "node"
    else:
        envs = [env for env in sess.scalars(query.order_by(Environment.name)) if _serves(env, site)]
        kind = "domain"
    if not envs:
        raise NotFound("No site {}: no environment of yours is served by a node or domain of that name.".format(site))
    nodes = {row.id: row for row in sess.scalars(select(ComputeNode).where(
        ComputeNode.id.in_({env.node_id for env in envs})))}
    targets = []
    for env in envs:
        path, port = app_health.health_path_and_port(sess, env)
        front = nodes[env.node_id]
        domains = [name for name in env.domains or [] if kind == "node" or name == site or name.endswith("." + site)]
        for domain in domains:
            targets.append({"kind": "front", "name": domain, "environment": env.name,
                            "url": "http://{}:{}{}".format(front.address, front.http_port, path),
                            "host_header": domain})
        targets.append({"kind": "backend", "name": env.name, "environment": env.name,
                        "url": "http://{}:{}{}".format(_bracketed(env.ip), port, path), "host_header": None})
    return {"site": site, "kind": kind, "tenant_id": envs[0].tenant_id, "targets": targets}


def _bracketed(address):
    return "[{}]".format(address) if ":" in address else address


async def _fetch(client, target, timeout):
    started = time.monotonic()
    headers = {"Host": target["host_header"]} if target.get("host_header") else {}
    result = {key: target[key] for key in ("kind", "name", "environment", "url")}
    try:
        response = await client.get(target["url"], headers=headers, timeout=timeout)
        result["status"] = response.status_code
        result["ok"] = 200 <= response.status_code < 400
        result["error"] = None if result["ok"] else "answered HTTP {}".format(response.status_code)
    except httpx.TimeoutException:
        result.update(status=None, ok=False, error="no answer within {:g} s".format(timeout))
    except httpx.HTTPError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        result.update(status=None, ok=False, error=reason)
    result["seconds"] = round(time.monotonic() - started, 4)
    return result


async def _walk(targets, timeout):
    # No redirects followed: a front that redirects to https answered, which is what is asked.
    limits = httpx.Limits(max_connections=max(len(targets), 1))
    async with httpx.AsyncClient(follow_redirects=False, limits=limits, trust_env=False) as client:
        return await asyncio.gather(*(_fetch(client, target, timeout) for target in targets))


def walk(targets, timeout=DEFAULT_TIMEOUT):
    """Ask every target at once; one result per target, in their order."""
    return list(asyncio.run(_walk(targets, timeout)))


def walk_one_by_one(targets, timeout=DEFAULT_TIMEOUT):
    """The same walk, one target after the other: the bench's baseline."""
    async def sequential():
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            return [await _fetch(client, target, timeout) for target in targets]
    return asyncio.run(sequential())


def summary(results):
    """One sentence about a walk's results."""
    failed = [result for result in results if not result["ok"]]
    if not failed:
        return "All {} targets answered.".format(len(results))
    shown = "; ".join("{} {} ({})".format(result["kind"], result["name"], result["error"]) for result in failed[:5])
    more = " and {} more".format(len(failed) - 5) if len(failed) > 5 else ""
    return "{} of {} targets failed: {}{}.".format(len(failed), len(results), shown, more)
