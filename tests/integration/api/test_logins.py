"""Logins against a real slapd through a real corpus-api: tokens, expiry, revocation,
bad passwords, the directory down."""

import datetime

from sqlalchemy import func, select, update

from mc_project.inventory import db
from mc_project.inventory.models import ApiToken, User
from support.api_answers import error



def test_login_maps_ldap_groups_to_tenants_and_roles(http):
    answer = http.post("/v1/login", json={"username": "alice", "password": "alice-secret"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user"] == {"name": "alice", "tenants": [{"name": "alpha", "role": "deployer"}]}
    expires = datetime.datetime.fromisoformat(body["expires_at"])
    assert datetime.timedelta(minutes=55) < expires - datetime.datetime.now(datetime.timezone.utc) \
        <= datetime.timedelta(hours=1)
    headers = {"Authorization": "Bearer " + body["token"]}
    assert http.get("/v1/whoami", headers=headers).json() == body["user"]
    bob = http.post("/v1/login", json={"username": "bob", "password": "bob-secret"}).json()["user"]
    assert bob["tenants"] == [{"name": "beta", "role": "admin"}]


def test_bad_password_and_unknown_user_are_401(http):
    assert error(http.post("/v1/login", json={"username": "alice", "password": "wrong"}), 401) == \
        "Wrong user name or password."
    error(http.post("/v1/login", json={"username": "mallory", "password": "x"}), 401)
    error(http.post("/v1/login", json={"username": "alice)(uid=*", "password": "x"}), 401)
    error(http.post("/v1/login", json={"username": "alice", "password": ""}), 422)


def test_tokens_expire_and_are_revoked(http, login, inventory):
    headers = login("alice")
    made = http.post("/v1/tokens", json={"name": "ci", "expires_in_days": 30}, headers=headers)
    assert made.status_code == 201 and made.headers["location"] == "/v1/tokens/{}".format(made.json()["id"])
    script = {"Authorization": "Bearer " + made.json()["token"]}
    assert http.get("/v1/environments", headers=script).json()["total"] == 2
    assert any(row["name"] == "ci" for row in http.get("/v1/tokens", headers=headers).json()["items"])
    assert http.delete("/v1/tokens/{}".format(made.json()["id"]), headers=headers).status_code == 204
    error(http.get("/v1/environments", headers=script), 401)

    short = login("alice")
    with db.session(inventory) as sess:
        sess.execute(update(ApiToken).where(ApiToken.id == sess.scalar(select(func.max(ApiToken.id))))
                     .values(expires=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)))
    assert "expired" in error(http.get("/v1/whoami", headers=short), 401)

    session = login("alice")
    assert http.post("/v1/logout", headers=session).status_code == 204
    error(http.get("/v1/whoami", headers=session), 401)
    error(http.get("/v1/whoami"), 401)


def test_directory_down_is_503_and_changes_nothing(http, directory, inventory):
    with db.session(inventory) as sess:
        before = (sess.scalar(select(func.count(ApiToken.id))), sess.scalar(select(func.count(User.id))))
    directory.stop()
    try:
        message = error(http.post("/v1/login", json={"username": "alice", "password": "alice-secret"}), 503)
        assert "LDAP directory" in message and "nothing was changed" in message
        error(http.post("/v1/login", json={"username": "dave", "password": "dave-secret"}), 503)
    finally:
        directory.start()
    with db.session(inventory) as sess:
        assert (sess.scalar(select(func.count(ApiToken.id))), sess.scalar(select(func.count(User.id)))) == before
    assert http.post("/v1/login", json={"username": "alice", "password": "alice-secret"}).status_code == 200
