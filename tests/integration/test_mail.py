"""The access mail through a real SMTP server (aiosmtpd sink on 127.0.0.1)."""

import socket

import pytest

from mc_project.controller import mail
from mc_project.controller.credentials import generate_password
from mc_project.errors import CorpusError
from support.ports import free_port
from support.services import SmtpSink, smtp_sink  # noqa: F401  (fixture)

PASSWORD = generate_password()

ENV = {
    "name": "shop-staging",
    "uuid": "6f1c2b1e-7d1a-4c55-9c8e-2f3a4b5c6d7e",
    "env_type": "staging",
    "project": "shop",
    "urls": ["http://shop-staging.corpus.test/", "http://www.shop-staging.corpus.test/"],
    "ssh_host": "node1.corpus.test",
    "ssh_port": 40007,
    "git_remote": "ssh://root@node1.corpus.test:40007/srv/projects/shop/git/project.git",
    # Fields the mail must never show, even when the caller passes them along.
    "password": PASSWORD,
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
}


def relay(sink, **extra):
    smtp = {"host": sink.host, "port": sink.port, "sender": "corpus@controller.test", "timeout": 5}
    return dict(smtp, **extra)


def test_access_mail_reaches_the_requester_with_every_field_and_no_secret(smtp_sink):  # noqa: F811
    subject, body = mail.access_mail(ENV)
    message_id = mail.send_mail(relay(smtp_sink), "dev@example.test", subject, body)

    [message] = smtp_sink.messages
    assert message["X-Envelope-From"] == "corpus@controller.test"
    assert message["X-Envelope-To"] == "dev@example.test"
    assert message["From"] == "corpus@controller.test"
    assert message["To"] == "dev@example.test"
    assert message["Subject"] == "Environment shop-staging (staging) is ready"
    assert message["Message-ID"] == message_id
    assert message["Date"]
    text = message.get_content()
    for expected in (
        "shop-staging",
        "6f1c2b1e-7d1a-4c55-9c8e-2f3a4b5c6d7e",
        "staging",
        "Project:     shop",
        "http://shop-staging.corpus.test/",
        "http://www.shop-staging.corpus.test/",
        "host node1.corpus.test, port 40007",
        "ssh -p 40007 root@node1.corpus.test",
        "git remote add shop-staging ssh://root@node1.corpus.test:40007/srv/projects/shop/git/project.git",
        "salt-run mc_cloud.credentials shop-staging",
    ):
        assert expected in text, expected
    raw = message.as_string()
    assert PASSWORD not in raw
    assert "PRIVATE KEY" not in raw and "b3BlbnNzaC1rZXktdjEAAAAA" not in raw


def test_mail_to_several_recipients(smtp_sink):  # noqa: F811
    mail.send_mail(relay(smtp_sink), ["a@example.test", "b@example.test"], "s", "body\n")
    [message] = smtp_sink.messages
    assert message["X-Envelope-To"] == "a@example.test, b@example.test"
    assert message.get_content() == "body\n"


def test_access_mail_without_git_remote_or_project():
    env = {k: v for k, v in ENV.items() if k not in ("git_remote", "project")}
    subject, body = mail.access_mail(env)
    assert "git remote" not in body and "Project:" not in body
    assert "salt-run mc_cloud.credentials shop-staging" in body


def test_access_mail_missing_fields_is_one_sentence():
    with pytest.raises(CorpusError, match="^The access mail needs uuid, ssh_port of the environment.$"):
        mail.access_mail({k: v for k, v in ENV.items() if k not in ("uuid", "ssh_port")})


def test_relay_down_is_one_clear_sentence():
    port = free_port()
    with pytest.raises(CorpusError) as info:
        mail.send_mail({"host": "127.0.0.1", "port": port, "timeout": 2}, "dev@example.test", "s", "b")
    assert str(info.value) == "Mail relay 127.0.0.1:{} did not answer: Connection refused.".format(port)


def test_relay_that_stopped_is_one_clear_sentence():
    with SmtpSink() as sink:
        smtp = relay(sink)
    with pytest.raises(CorpusError, match="^Mail relay 127.0.0.1:{} did not answer: ".format(smtp["port"])):
        mail.send_mail(smtp, "dev@example.test", "s", "b")


def test_relay_refusing_the_recipient_is_one_clear_sentence():
    with SmtpSink(refuse=True) as sink:
        with pytest.raises(CorpusError) as info:
            mail.send_mail(relay(sink), "dev@example.test", "s", "b")
        assert sink.messages == []
    assert str(info.value) == (
        "Mail relay 127.0.0.1:{} refused the recipient dev@example.test "
        "(550 5.1.1 <dev@example.test>: recipient refused by this test relay).".format(sink.port)
    )


def test_no_relay_configured_or_no_recipient():
    with pytest.raises(CorpusError, match=r"^No mail relay is configured \(corpus: smtp: host\).$"):
        mail.send_mail({"host": None, "port": 25}, "dev@example.test", "s", "b")
    with pytest.raises(CorpusError, match="^The mail has no recipient.$"):
        mail.send_mail({"host": "127.0.0.1"}, [], "s", "b")


def test_header_injection_is_refused(smtp_sink):  # noqa: F811
    with pytest.raises(CorpusError, match="not valid"):
        mail.send_mail(relay(smtp_sink), "dev@example.test", "s\nBcc: victim@example.test", "b")
    assert smtp_sink.messages == []


def test_relay_that_never_greets_times_out_in_one_sentence():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections queue up but nobody ever answers them
        port = silent.getsockname()[1]
        expected = "^Mail relay 127.0.0.1:{} did not answer: .*timed out.$".format(port)
        with pytest.raises(CorpusError, match=expected):
            mail.send_mail({"host": "127.0.0.1", "port": port, "timeout": 1}, "dev@example.test", "s", "b")
