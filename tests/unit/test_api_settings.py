"""The API's settings, the controller's API options, LDAP group mapping, error mapping
and password hashes: no server, no directory."""

import argparse
import io

import pytest

from mc_project.api import ldap, passwords, settings
from mc_project.api.errors import from_corpus_error, sentence
from mc_project.controller import cli
from mc_project.errors import CorpusError


def test_defaults():
    chosen = settings.api_settings({})
    assert (chosen["bind"], chosen["port"], chosen["token_hours"], chosen["ldap"]) == ("127.0.0.1", 8400, 12, None)


@pytest.mark.parametrize("given, message", [
    ({"port": 0}, "port must be a port"),
    ({"port": True}, "port must be a port"),
    ({"colour": 1}, "Unknown API setting corpus_api:colour"),
    ({"tls_cert": "/c.pem"}, "go together"),
    ({"token_hours": -1}, "token_hours"),
    ({"ldap": {"url": "http://x"}}, "ldap:url"),
    ({"ldap": {"url": "ldap://x"}}, "user_dn (a DN template) or search_base"),
    ({"ldap": {"url": "ldap://x", "user_dn": "uid=x"}}, "{username}"),
    ({"ldap": {"url": "ldap://x", "user_dn": "uid={username}", "groups": {"g": {"tenant": "t", "role": "god"}}}},
     "needs a tenant and a role"),
])
def test_bad_settings_are_one_sentence(given, message):
    with pytest.raises(CorpusError, match=message.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")
                       .replace("}", r"\}")):
        settings.api_settings({"corpus_api": given})


def test_groups_map_to_the_highest_role_per_tenant():
    config = {"groups": {"Devs": {"tenant": "alpha", "role": "deployer"},
                         "cn=ops,ou=groups,dc=x": {"tenant": "alpha", "role": "admin"},
                         "readers": {"tenant": "beta", "role": "viewer"}}}
    found = ldap.grants(config, [("cn=devs,ou=groups,dc=x", "devs"), ("cn=ops,ou=groups,dc=x", "ops"),
                                 ("cn=readers,ou=groups,dc=x", "readers"), ("cn=other,dc=x", "other")])
    assert found == {"alpha": "admin", "beta": "viewer"}


def test_an_empty_password_or_a_strange_name_never_reaches_the_directory():
    config = {"url": "ldap://127.0.0.1:1", "timeout": 1}
    for name, password in (("alice", ""), ("alice)(uid=*", "x"), ("", "x")):
        with pytest.raises(ldap.BadCredentials):
            ldap.authenticate(config, name, password)


def test_a_directory_that_does_not_answer_is_unreachable():
    config = dict(settings.LDAP_DEFAULTS, url="ldap://127.0.0.1:1", user_dn="uid={username},dc=x", timeout=1)
    with pytest.raises(ldap.Unreachable):
        ldap.authenticate(config, "alice", "secret")


def test_refusals_map_to_statuses():
    assert from_corpus_error(CorpusError("No environment named x.")).status == 404
    assert from_corpus_error(CorpusError("No job 7 in the inventory.")).status == 404
    assert from_corpus_error(CorpusError("Environment e has no project p.")).status == 404
    assert from_corpus_error(CorpusError("An environment named x already exists.")).status == 409
    assert from_corpus_error(CorpusError("No compute node is linked; link one first.")).status == 409
    assert from_corpus_error(CorpusError("Environment e is creating, not active.")).status == 409
    assert from_corpus_error(CorpusError("No compute node named n.")).status == 404
    assert from_corpus_error(CorpusError("Size must be a whole number of MiB, not 'x'.")).status == 400
    assert sentence("first line\nsecond") == "first line."


def test_passwords_are_argon2_hashes():
    hashed = passwords.hash_password("s3cret")
    assert hashed.startswith("$argon2id$") and "s3cret" not in hashed
    assert passwords.verify(hashed, "s3cret") and not passwords.verify(hashed, "other")
    assert not passwords.verify(None, "s3cret") and not passwords.verify("garbage", "s3cret")


def _init_args(*extra):
    return cli.parser().parse_args(["init", "--root", "/srv/ctl", *extra])


def test_init_writes_the_api_settings_over_the_old_ones():
    args = _init_args("--api-port", "9000", "--ldap-url", "ldap://ldap.example.com",
                      "--ldap-user-dn", "uid={username},ou=people,dc=example,dc=com",
                      "--ldap-group", "devs=shop:deployer", "--ldap-group", "ops=shop:admin")
    planned = cli.plan_api(args, {"bind": "0.0.0.0", "port": 8400, "token_hours": 4})
    assert planned["port"] == 9000 and planned["bind"] == "0.0.0.0" and planned["token_hours"] == 4
    assert planned["ldap"]["groups"] == {"devs": {"tenant": "shop", "role": "deployer"},
                                         "ops": {"tenant": "shop", "role": "admin"}}
    assert cli.plan_api(_init_args(), planned) == planned  # options not given keep their values


def test_bad_api_options_are_bad_input():
    with pytest.raises(cli.BadInput, match="go together"):
        cli.plan_api(_init_args("--api-cert", "/etc/hostname"), {})
    with pytest.raises(cli.BadInput, match="is not a file"):
        cli.plan_api(_init_args("--api-cert", "/nonexistent.pem", "--api-key", "/nonexistent.key"), {})
    with pytest.raises(cli.BadInput, match="GROUP=TENANT:ROLE"):
        _init_args("--ldap-group", "devs")
    with pytest.raises(argparse.ArgumentTypeError):
        cli._group_grant("devs=shop")


def test_a_password_comes_from_stdin():
    assert cli._read_password(io.StringIO("pw\n")) == "pw"
    with pytest.raises(cli.BadInput, match="must not be empty"):
        cli._read_password(io.StringIO("\n"))
