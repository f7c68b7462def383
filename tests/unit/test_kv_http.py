"""The sdb driver's client of the key/value store: its profile checked in one sentence,
its token file private (mc_project.health.kv_http)."""

import os

import pytest

from mc_project.errors import CorpusError
from mc_project.health import kv_http


def test_a_profile_is_checked_in_one_sentence(tmp_path):
    token = tmp_path / "token"
    token.write_text("corpus_abc\n")
    os.chmod(token, 0o600)
    good = {"driver": "corpus_kv", "url": "http://127.0.0.1:8400", "token_file": str(token)}
    with kv_http.KvHttp.from_profile(good) as client:
        assert client.url == "http://127.0.0.1:8400"
    for profile, message in (
            ({**good, "colour": "blue"}, "Unknown corpus_kv profile setting colour"),
            ({**good, "url": "ftp://x"}, "needs url"),
            ({**good, "timeout": 0}, "timeout is a number"),
            ({"driver": "corpus_kv", "url": "http://x"}, "needs token_file"),
            ({**good, "token_file": str(tmp_path / "none")}, "Cannot read the token file"),
    ):
        with pytest.raises(CorpusError, match=message):
            kv_http.KvHttp.from_profile(profile)


def test_a_token_file_others_can_read_is_refused(tmp_path):
    token = tmp_path / "token"
    token.write_text("corpus_abc\n")
    os.chmod(token, 0o644)
    with pytest.raises(CorpusError, match="readable by other users"):
        kv_http.KvHttp.from_profile({"driver": "corpus_kv", "url": "http://x", "token_file": str(token)})


def test_values_are_text_when_they_are_utf8():
    assert kv_http.as_text(b"caf\xc3\xa9") == "café"
    assert kv_http.as_text(b"\xff\x00") == b"\xff\x00"
    assert kv_http.as_text(None) is None
