"""The SSH client the controller reaches a compute node with (paramiko).

A node's host key is trusted on first use and given back to the caller, which
records it; later connections pass the recorded key and any other is refused.
"""

import base64
import hashlib
import os
import socket

import paramiko

from mc_project.common import messages
from mc_project.errors import CorpusError

SSH_TIMEOUT = 15


def host_key_line(key):
    return "{} {}".format(key.get_name(), key.get_base64())


def fingerprint(key):
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept the unknown host key of a node linked for the first time, and keep it."""

    def __init__(self):
        self.key = None

    def missing_host_key(self, client, hostname, key):
        self.key = key


class NodeShell:
    """An SSH connection to a node: run commands, move files."""

    def __init__(self, client, where):
        self.client = client
        self.where = where
        self._sftp = None

    @property
    def sftp(self):
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def run(self, command, timeout=SSH_TIMEOUT * 4):
        """Run ``command`` through the node's shell; return ``(retcode, stdout, stderr)``."""
        try:
            _stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            return stdout.channel.recv_exit_status(), out, err
        except (paramiko.SSHException, OSError) as exc:
            raise CorpusError("The SSH connection to {} failed while running a command: {}.".format(
                self.where, messages.reason(exc))) from exc

    def check(self, command, what, timeout=SSH_TIMEOUT * 4):
        """Run ``command``; raise a sentence naming ``what`` failed if it exits non-zero."""
        code, out, err = self.run(command, timeout)
        if code != 0:
            raise CorpusError("{} failed on {}: {}.".format(
                what, self.where, messages.last_line(err or out, "no output")))
        return out

    def write(self, path, text, mode=0o644):
        """Write ``text`` to ``path`` atomically, with ``mode`` set before any byte lands."""
        temporary = path + ".corpus-tmp"
        try:
            with self.sftp.open(temporary, "w") as fh:
                self.sftp.chmod(temporary, mode)
                fh.write(text.encode("utf-8"))
            self.sftp.posix_rename(temporary, path)
        except (IOError, paramiko.SSHException) as exc:
            raise CorpusError("Cannot write {} on {}: {}.".format(path, self.where, messages.reason(exc))) from exc

    def read(self, path):
        """The text of ``path`` on the node, or None when it does not exist."""
        try:
            with self.sftp.open(path, "r") as fh:
                return fh.read().decode("utf-8")
        except FileNotFoundError:
            return None
        except (IOError, paramiko.SSHException) as exc:
            raise CorpusError("Cannot read {} on {}: {}.".format(path, self.where, messages.reason(exc))) from exc

    def close(self):
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()


def connect(host, port, user, key, known_host_key=None):
    """An open ``NodeShell`` to ``user@host:port`` and the host key it presented.

    With ``known_host_key`` (``"type base64"``), any other key is refused.
    """
    where = "{}@{}:{}".format(user, host, port)
    if key is not None and not os.path.isfile(key):
        raise CorpusError("No SSH private key at {}.".format(key))
    client = paramiko.SSHClient()
    policy = _TrustOnFirstUse()
    client.set_missing_host_key_policy(policy)
    expected = None
    if known_host_key:
        keytype, data = known_host_key.split(None, 1)
        expected = paramiko.PKey.from_type_string(keytype, base64.b64decode(data))
        known_name = host if int(port) == 22 else "[{}]:{}".format(host, port)
        client.get_host_keys().add(known_name, keytype, expected)
    try:
        client.connect(host, port=int(port), username=user, key_filename=key,
                       look_for_keys=key is None, allow_agent=key is None, timeout=SSH_TIMEOUT,
                       banner_timeout=SSH_TIMEOUT, auth_timeout=SSH_TIMEOUT)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise CorpusError(
            "The SSH host key of {}:{} changed since it was linked (expected {}, got {}); "
            "unlink the node before linking it again if this change is expected.".format(
                host, port, fingerprint(exc.expected_key), fingerprint(exc.key))) from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise CorpusError("The SSH key {} is protected by a passphrase; corpus needs one without.".format(
            key)) from None
    except paramiko.AuthenticationException:
        client.close()
        raise CorpusError("{} refused the SSH key {}.".format(where, key or "of this controller")) from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise CorpusError("Cannot reach {}:{} over SSH: the connection timed out.".format(
            host, port)) from None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        client.close()
        raise CorpusError("Cannot reach {}:{} over SSH: {}.".format(host, port, messages.reason(exc))) from None
    server_key = expected if known_host_key else policy.key
    if server_key is None:  # already known to the client's own host keys
        server_key = client.get_transport().get_remote_server_key()
    return NodeShell(client, where), server_key
