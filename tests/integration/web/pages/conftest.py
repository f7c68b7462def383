"""The web page served by a real ``corpus-api`` over a real salt-master and slapd: the
fixtures of tests/integration/api (loaded from its conftest.py, not copied): users
alice (deployer of alpha), carol (viewer of alpha) and bob (admin of beta), a node of
alpha, environments a1, a2 (alpha) and b1 (beta)."""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "corpus_api_test_fixtures", os.path.join(os.path.dirname(os.path.dirname(HERE)), "api", "conftest.py"))
api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api_fixtures)

USERS = api_fixtures.USERS
directory, master, ctl, inventory, api = (api_fixtures.directory, api_fixtures.master, api_fixtures.ctl,
                                          api_fixtures.inventory, api_fixtures.api)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test here needs slapd (the API's directory) and shares one API server."""
    for item in items:
        if str(item.path).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.needs("slapd"))


@pytest.fixture
def passwords():
    """The directory's users and their passwords."""
    return dict(USERS)
