"""The web page over a real controller with a real LXC node: the fixtures of
tests/integration/controller (loaded from its conftest.py, not copied): a salt-master
with PowerDNS and an SMTP sink, and ``node1``, this machine linked over sshd."""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "corpus_controller_test_fixtures",
    os.path.join(os.path.dirname(os.path.dirname(HERE)), "controller", "conftest.py"))
controller_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(controller_fixtures)

DOMAIN = controller_fixtures.DOMAIN
pdns, smtp, node2_host, controller, salt_run, ctl, sshd, node1 = (
    controller_fixtures.pdns, controller_fixtures.smtp, controller_fixtures.node2_host,
    controller_fixtures.controller, controller_fixtures.salt_run, controller_fixtures.ctl,
    controller_fixtures.sshd, controller_fixtures.node1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test here needs what the controller's tests need (root, LXC, sshd, PowerDNS)."""
    for item in items:
        if str(item.path).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.needs(*controller_fixtures.NEEDS, group=HERE))
