"""The environment tests run on a real controller and real nodes: the fixtures of
tests/support/controller_fixtures.py (``controller``, ``salt_run``, ``ctl``, ``node1``,
``node2``, ``pdns``, ``smtp``...)."""

import os

import pytest

from support import controller_fixtures

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    controller_fixtures.mark_needs(items, HERE)
