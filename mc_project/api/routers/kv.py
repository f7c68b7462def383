"""``/v1/kv/{key}``: the key/value store of a tenant, as Consul's KV (mc_project.health.kv).

* ``GET /v1/kv/{key}``: the key (``{"key", "value", "flags", "create_index",
  "modify_index"}``, the value base64-encoded), 404 if it does not exist;
  ``?raw=true``: the value's bytes alone; ``?recurse=true``: ``{"items": [...]}``, every
  key under the prefix ``key``; ``?keys=true``: ``{"keys": [...]}``, their names (with
  ``&separator=/``, cut after the first ``/`` past the prefix).
  ``?index=N&wait=30s`` blocks until the index of the key (or prefix) is no longer N,
  or the wait (default 5 minutes, at most 10) is over, then answers as above.
* ``PUT /v1/kv/{key}`` with the value as the request's body (bytes, up to 512 KiB);
  ``?flags=N``; ``?cas=N`` writes only if the key's modify index is N (0: only if it
  does not exist). Answers ``true`` or ``false``.
* ``DELETE /v1/kv/{key}``; ``?recurse=true`` deletes every key under the prefix;
  ``?cas=N`` as for PUT. Answers ``true`` or ``false``.

Every answer carries ``X-Corpus-Index``: the index of the key or prefix (after a
write, the index the write took). ``?tenant=`` names the store; without it, the
first of the caller's tenants, by name, where their role allows the call. Viewers
read; deployers and admins write; another tenant's store does not exist (404).
"""

import base64
import functools

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from mc_project.api import audit, auth, errors, tenants
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.health import kv, kv_wait
from mc_project.inventory import db

router = APIRouter(prefix="/kv", tags=["key/value store"])

INDEX_HEADER = "X-Corpus-Index"
KeyPath = Path(max_length=4 * kv.MAX_KEY_LENGTH)
TenantQuery = Query(None, min_length=1, max_length=128)
CasQuery = Query(None, ge=0, le=kv.MAX_FLAGS)
READ_REFUSAL = "You may not read a key/value store: you are a member of no tenant."
WRITE_REFUSAL = "You may not change a key/value store: you are deployer or admin of no tenant."


def _store(url, caller, wanted, role):
    """The id and name of the tenant whose store the call reads or writes."""
    with db.session(url) as sess:
        return tenants.tenant_for_new(sess, caller, wanted, role, READ_REFUSAL if role == "viewer" else WRITE_REFUSAL)


def _refused(call):
    """Run ``call``; the store's refusals (a bad key...) are 400 with their sentence."""
    try:
        return call()
    except kv.KvError as exc:
        raise ApiError(400, str(exc)) from None


def _json_record(entry):
    shown = kv.record(entry)
    shown["value"] = base64.b64encode(shown["value"]).decode("ascii")
    return shown


def _read(url, tenant_id, key, recurse, list_keys, separator, raw):
    """``(status, body or bytes, index)`` of a read, in one transaction."""
    with db.session(url) as sess:
        index = kv.index_of(sess, tenant_id, key, recurse=recurse or list_keys)
        if list_keys:
            return 200, {"keys": kv.keys(sess, tenant_id, key, separator)}, index
        if recurse:
            return 200, {"items": [_json_record(entry) for entry in kv.entries(sess, tenant_id, key)]}, index
        entry = kv.get(sess, tenant_id, key)
        if entry is None:
            return 404, None, index
        return 200, entry.value if raw else _json_record(entry), index


def _index_reader(url, tenant_id, key, recurse):
    def read():
        with db.session(url) as sess:
            return kv.index_of(sess, tenant_id, key, recurse=recurse)
    return read


def _store_reader(url, tenant_id):
    def read():
        with db.session(url) as sess:
            return kv.store_index(sess, tenant_id)
    return read


@router.get("/{key:path}")
async def read_key(request: Request, key: str = KeyPath, tenant: str | None = TenantQuery,
                   recurse: bool = False, keys: bool = False, separator: str | None = Query(None, max_length=16),
                   raw: bool = False, index: int | None = Query(None, ge=0, le=kv.MAX_FLAGS),
                   wait: str | None = Query(None, max_length=32), caller: Principal = Depends(auth.principal)):
    """A key, the keys under a prefix, or their names; with ``index``, a blocking read."""
    url = request.app.state.url
    seconds = kv_wait.parse_wait(wait)
    if seconds is None:
        raise ApiError(400, "wait is a duration such as 30s, 500ms or 5m; got {}.".format(wait))
    if separator is not None and not keys:
        raise ApiError(400, "separator goes with keys=true.")
    tenant_id, _name = await anyio.to_thread.run_sync(_store, url, caller, tenant, "viewer")
    prefix = recurse or keys
    _refused(lambda: kv.check_key(key, prefix=prefix))
    if index is not None:
        await kv_wait.wait_for_change(tenant_id, index, seconds, _index_reader(url, tenant_id, key, prefix),
                                      _store_reader(url, tenant_id))
    status, body, found = await anyio.to_thread.run_sync(
        functools.partial(_read, url, tenant_id, key, recurse, keys, separator, raw))
    headers = {INDEX_HEADER: str(found)}
    if status == 404:
        # An answer, not a raised error: a watcher needs the index of a key that is not there.
        return JSONResponse(errors.body(404, "No key {} in this store".format(key[:200])), status_code=404,
                            headers=headers)
    if raw and not prefix:
        return Response(content=body, media_type="application/octet-stream", headers=headers)
    return JSONResponse(body, headers=headers)


async def _body(request):
    """The request's body, refused (413) past the largest value without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > kv.MAX_VALUE_BYTES:
        raise ApiError(413, "A value has at most {} bytes.".format(kv.MAX_VALUE_BYTES))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > kv.MAX_VALUE_BYTES:
            raise ApiError(413, "A value has at most {} bytes.".format(kv.MAX_VALUE_BYTES))
        chunks.append(chunk)
    return b"".join(chunks)


def _write(url, tenant_id, change):
    with db.session(url) as sess:
        done, index = _refused(lambda: change(sess))
    if done and index:
        kv_wait.CHANGES.changed(tenant_id)
    return done, index


@router.put("/{key:path}")
async def write_key(request: Request, key: str = KeyPath, tenant: str | None = TenantQuery,
                    cas: int | None = CasQuery, flags: int = Query(0, ge=0, le=kv.MAX_FLAGS),
                    caller: Principal = Depends(auth.principal)):
    """Set a key to the request's body; with ``cas``, only if its modify index is ``cas``."""
    url = request.app.state.url
    _refused(lambda: kv.check_key(key))
    value = await _body(request)
    tenant_id, name = await anyio.to_thread.run_sync(_store, url, caller, tenant, "deployer")
    audit.note(request, target=key, tenant=name)
    done, index = await anyio.to_thread.run_sync(
        _write, url, tenant_id, lambda sess: kv.put(sess, tenant_id, key, value, flags=flags, cas=cas))
    audit.note(request, result="key {} {}".format(key[:200], "set" if done else "not set: cas {} failed".format(cas)))
    return JSONResponse(done, headers={INDEX_HEADER: str(index)})


@router.delete("/{key:path}")
async def delete_key(request: Request, key: str = KeyPath, tenant: str | None = TenantQuery,
                     recurse: bool = False, cas: int | None = CasQuery, caller: Principal = Depends(auth.principal)):
    """Delete a key (every key under a prefix, with ``recurse``); with ``cas``, only if its
    modify index is ``cas``."""
    url = request.app.state.url
    _refused(lambda: kv.check_key(key, prefix=recurse))
    tenant_id, name = await anyio.to_thread.run_sync(_store, url, caller, tenant, "deployer")
    audit.note(request, target=key or "(every key)", tenant=name)
    done, index = await anyio.to_thread.run_sync(
        _write, url, tenant_id, lambda sess: kv.delete(sess, tenant_id, key, recurse=recurse, cas=cas))
    audit.note(request, result="{} {}".format("keys under" if recurse else "key", key[:200]) +
               (" deleted" if done else " not deleted: cas {} failed".format(cas)))
    return JSONResponse(done, headers={INDEX_HEADER: str(index)})
