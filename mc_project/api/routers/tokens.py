"""Logging in and out, who am I, and API tokens for scripts."""

import datetime

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import Field
from sqlalchemy import func, select, update

from mc_project.api import audit, auth
from mc_project.api.deps import Page, Strict
from mc_project.api.errors import ApiError
from mc_project.api.tenants import Principal
from mc_project.inventory import db
from mc_project.inventory.models import ApiToken

router = APIRouter(tags=["login and tokens"])


class Login(Strict):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=4096)


class NewToken(Strict):
    name: str = Field(min_length=1, max_length=255)
    expires_in_days: int = Field(90, ge=1, le=auth.MAX_TOKEN_DAYS)


@router.post("/login")
def login(body: Login, request: Request):
    """Check a user name and password (LDAP, or local users) and return a bearer token."""
    request.state.user = body.username
    found, token, expires = auth.login(request.app.state, body.username, body.password)
    audit.note(request, result="logged in", target=body.username)
    return {"token": token, "expires_at": auth.iso(expires), "user": found.described()}


@router.post("/logout", status_code=204)
def logout(request: Request, caller: Principal = Depends(auth.principal)):
    """Revoke the token of this call."""
    with db.session(request.app.state.url) as sess:
        sess.execute(update(ApiToken).where(ApiToken.id == caller.token_id).values(revoked=True))
    audit.note(request, result="logged out")
    return Response(status_code=204)


@router.get("/whoami")
def whoami(caller: Principal = Depends(auth.principal)):
    return caller.described()


def _token(row):
    return {"id": row.id, "name": row.name, "kind": row.kind, "created": auth.iso(row.created),
            "expires_at": auth.iso(row.expires), "revoked": row.revoked}


@router.post("/tokens", status_code=201)
def create_token(body: NewToken, request: Request, response: Response,
                 caller: Principal = Depends(auth.principal)):
    """A token for scripts, with your roles; shown once."""
    with db.session(request.app.state.url) as sess:
        row, token = auth.issue(sess, caller.user_id, "api", datetime.timedelta(days=body.expires_in_days),
                                name=body.name)
        answer = {"id": row.id, "token": token, "expires_at": auth.iso(row.expires)}
    response.headers["Location"] = "/v1/tokens/{}".format(answer["id"])
    audit.note(request, result="token {} made".format(answer["id"]), target=body.name)
    return answer


@router.get("/tokens")
def list_tokens(request: Request, page: Page = Depends(), caller: Principal = Depends(auth.principal)):
    """Your tokens (never their value)."""
    with db.session(request.app.state.url) as sess:
        where = ApiToken.user_id == caller.user_id
        total = sess.scalar(select(func.count(ApiToken.id)).where(where))
        rows = sess.scalars(select(ApiToken).where(where).order_by(ApiToken.id)
                            .limit(page.limit).offset(page.offset)).all()
        return page.answer([_token(row) for row in rows], total)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(request: Request, token_id: int = Path(ge=1, le=2 ** 62),
                 caller: Principal = Depends(auth.principal)):
    """Revoke one of your tokens."""
    with db.session(request.app.state.url) as sess:
        row = sess.get(ApiToken, token_id)
        if row is None or row.user_id != caller.user_id:
            raise ApiError(404, "No token {}.".format(token_id))
        row.revoked = True
    audit.note(request, result="token {} revoked".format(token_id), target=str(token_id))
    return Response(status_code=204)
