"""The access mail sent to whoever asked for an environment, and sending it over SMTP.

The mail says where the environment is (URLs, SSH host and port, git remote)
and how to get its credentials (``salt-run mc_cloud.credentials NAME`` on the
controller), never the credentials themselves: mail is stored and forwarded in
clear.
"""

import email.utils
import smtplib
import socket
from email.message import EmailMessage

from mc_project.errors import CorpusError

REQUIRED_FIELDS = ("name", "uuid", "env_type", "urls", "ssh_host", "ssh_port")


def credentials_command(name):
    """What the requester runs on the controller to read an environment's credentials."""
    return "salt-run mc_cloud.credentials {}".format(name)


def access_mail(env):
    """``(subject, body)`` of the access mail for ``env``.

    ``env`` is a mapping with ``name``, ``uuid``, ``env_type``, ``urls`` (a list),
    ``ssh_host``, ``ssh_port`` and optionally ``git_remote`` and ``project``.
    Nothing else in it is read, so a secret in it cannot reach the mail.
    """
    missing = [field for field in REQUIRED_FIELDS if env.get(field) in (None, "")]
    if missing:
        raise CorpusError("The access mail needs {} of the environment.".format(", ".join(missing)))
    name, ssh_host, ssh_port = env["name"], env["ssh_host"], env["ssh_port"]
    urls = [env["urls"]] if isinstance(env["urls"], str) else list(env["urls"])
    subject = "Environment {} ({}) is ready".format(name, env["env_type"])
    lines = [
        "Your {} environment {} is ready.".format(env["env_type"], name),
        "",
        "Environment: {}".format(name),
        "UUID:        {}".format(env["uuid"]),
        "Type:        {}".format(env["env_type"]),
    ]
    if env.get("project"):
        lines.append("Project:     {}".format(env["project"]))
    lines += ["", "Web:"]
    lines += ["  {}".format(url) for url in urls]
    lines += [
        "",
        "SSH:",
        "  host {}, port {}".format(ssh_host, ssh_port),
        "  ssh -p {} root@{}".format(ssh_port, ssh_host),
        "  The host keys are published as SSHFP records: ssh -o VerifyHostKeyDNS=yes checks them.",
    ]
    if env.get("git_remote"):
        lines += ["", "Git (push here to deploy):"]
        lines.append("  git remote add {} {}".format(name, env["git_remote"]))
    lines += [
        "",
        "Credentials (root password and SSH key) are not sent by mail. Get them on the controller with:",
        "  {}".format(credentials_command(name)),
        "",
    ]
    return subject, "\n".join(lines)


def send_mail(smtp, to, subject, body):
    """Send a plain-text mail through the relay ``smtp`` = ``{host, port, sender, timeout}``.

    ``to`` is one address or a list of them. Returns the Message-ID.
    """
    host = (smtp or {}).get("host")
    if not host:
        raise CorpusError("No mail relay is configured (corpus: smtp: host).")
    port = int(smtp.get("port") or 25)
    recipients = [to] if isinstance(to, str) else list(to or [])
    if not recipients or not all(recipients):
        raise CorpusError("The mail has no recipient.")
    sender = smtp.get("sender") or "corpus@{}".format(socket.getfqdn())
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
    except ValueError as exc:  # a line break in a header: refuse rather than inject headers
        raise CorpusError(
            "The mail's sender, recipient or subject is not valid: {}.".format(_text(exc))
        ) from None
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    relay = "{}:{}".format(host, port)
    try:
        with smtplib.SMTP(host, port, timeout=float(smtp.get("timeout") or 10)) as client:
            client.send_message(message, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(
            "{} ({} {})".format(address, code, _text(reply))
            for address, (code, reply) in exc.recipients.items()
        )
        raise CorpusError("Mail relay {} refused the recipient {}.".format(relay, refused)) from None
    except smtplib.SMTPResponseException as exc:
        raise CorpusError(
            "Mail relay {} refused the mail: {} {}.".format(relay, exc.smtp_code, _text(exc.smtp_error))
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = _text(exc) or type(exc).__name__
        raise CorpusError("Mail relay {} did not answer: {}.".format(relay, reason)) from None
    return message["Message-ID"]


def _text(reply):
    """An SMTP reply or an error as one line without its final dot."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    if isinstance(reply, OSError) and reply.strerror:
        reply = reply.strerror
    return " ".join(str(reply).split()).rstrip(".")
