"""Fixtures for the project engine's integration tests (helpers in helpers.py)."""

import pytest

from support.corpus import Corpus


@pytest.fixture
def corpus(tmp_path, salt_local):
    c = Corpus(tmp_path, salt_local)
    yield c
    c.stop_all()
