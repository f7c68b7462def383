"""A real OpenLDAP ``slapd`` for the tests, on a free loopback port, with a directory
of its own: ``Slapd(workdir, users=..., groups=...)`` as a context manager.

Users are ``uid=NAME,ou=people,dc=corpus,dc=test`` (inetOrgPerson, the given
password); groups are ``cn=NAME,ou=groups,dc=corpus,dc=test`` (groupOfNames).
``stop()`` and ``start()`` play a directory going down and coming back.
"""

import os
import signal
import subprocess
import time

from support import needs
from support.ports import LOOPBACK, free_port
from support.wait import wait_port

SUFFIX = "dc=corpus,dc=test"
ADMIN_DN = "cn=admin," + SUFFIX
ADMIN_PASSWORD = "slapd-admin-secret"
PEOPLE = "ou=people," + SUFFIX
GROUPS = "ou=groups," + SUFFIX
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
MODULE_PATH = "/usr/lib/ldap"

# The mark tests use: pytest.mark.needs("slapd") (tests/support/needs.py's mechanism).
needs.REQUIREMENTS.setdefault("slapd", ("slapd and ldapadd (slapd, ldap-utils)",
                                        lambda: bool(needs.command("slapd")) and bool(needs.command("ldapadd"))))


def user_dn(name):
    return "uid={},{}".format(name, PEOPLE)


def group_dn(name):
    return "cn={},{}".format(name, GROUPS)


class Slapd:
    def __init__(self, workdir, users, groups):
        """``users``: ``{name: password}``; ``groups``: ``{name: [user names]}``."""
        self.workdir = str(workdir)
        self.users = users
        self.groups = groups
        self.port = free_port()
        self.url = "ldap://{}:{}".format(LOOPBACK, self.port)
        self.process = None

    def _config(self):
        data = os.path.join(self.workdir, "data")
        os.makedirs(data, exist_ok=True)
        lines = ["include /etc/ldap/schema/{}.schema".format(name) for name in SCHEMAS]
        lines += ["modulepath {}".format(MODULE_PATH), "moduleload back_mdb",
                  "pidfile {}".format(os.path.join(self.workdir, "slapd.pid")),
                  "database mdb", "maxsize 104857600", "suffix \"{}\"".format(SUFFIX),
                  "rootdn \"{}\"".format(ADMIN_DN), "rootpw {}".format(ADMIN_PASSWORD),
                  "directory {}".format(data)]
        path = os.path.join(self.workdir, "slapd.conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        return path

    def _ldif(self):
        entries = ["dn: {}\nobjectClass: dcObject\nobjectClass: organization\no: corpus\ndc: corpus".format(SUFFIX),
                   "dn: {}\nobjectClass: organizationalUnit\nou: people".format(PEOPLE),
                   "dn: {}\nobjectClass: organizationalUnit\nou: groups".format(GROUPS)]
        for name, password in self.users.items():
            entries.append("dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: {}\nsn: {}\nuserPassword: {}".format(
                user_dn(name), name, name, name, password))
        for name, members in self.groups.items():
            entries.append("dn: {}\nobjectClass: groupOfNames\ncn: {}\n{}".format(
                group_dn(name), name, "\n".join("member: {}".format(user_dn(member)) for member in members)))
        return "\n\n".join(entries) + "\n"

    def start(self):
        self.process = subprocess.Popen(
            [needs.command("slapd"), "-d", "0", "-f", self.config, "-h", self.url],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.workdir, "slapd.log"), "ab"))
        wait_port(LOOPBACK, self.port, timeout=20)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        time.sleep(0.1)

    def __enter__(self):
        self.config = self._config()
        self.start()
        subprocess.run([needs.command("ldapadd"), "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
                       input=self._ldif(), text=True, check=True, capture_output=True)
        return self

    def __exit__(self, *exc):
        self.stop()
