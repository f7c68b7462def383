"""The web page over a real controller with a real LXC node: the fixtures of
tests/support/controller_fixtures.py (a salt-master with PowerDNS and an SMTP sink, and
``node1``, this machine linked over sshd), the same ones the controller's tests use."""

import os

import pytest

from support import controller_fixtures

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = controller_fixtures.DOMAIN


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    controller_fixtures.mark_needs(items, HERE)
