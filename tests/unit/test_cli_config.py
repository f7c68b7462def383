"""The corpus command's configuration: ~/.makinastates.conf, CORPUS_* variables and flags,
in that order of precedence; the token kept 0600; sizes as people write them."""

import json
import stat

import pytest

from mc_project.cli import config
from mc_project.cli.errors import CliError
from mc_project.cli.main import hoist_global_options
from mc_project.cli.sizes import parse_size_mb
from support.api_stub import StubApi, run_corpus


@pytest.fixture(scope="module")
def api():
    with StubApi() as stub:
        yield stub


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    for var in ("CORPUS_URL", "CORPUS_USER", "CORPUS_ENV", "CORPUS_TOKEN", "CORPUS_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def write_conf(home, **values):
    lines = ["[corpus]"] + [f"{key} = {value}" for key, value in values.items()]
    (home / ".makinastates.conf").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("text, mib", [("10G", 10240), ("512M", 512), ("1.5G", 1536), ("2048", 2048),
                                       ("1T", 1048576), ("10g", 10240), ("10GiB", 10240), ("512MB", 512)])
def test_sizes(text, mib):
    assert parse_size_mb(text) == mib


@pytest.mark.parametrize("text", ["", "ten", "10X", "-5G", "0", "0.3M", "1.2.G"])
def test_bad_sizes_are_bad_input(text):
    with pytest.raises(CliError) as caught:
        parse_size_mb(text)
    assert caught.value.exit_code == 2
    assert "512M" in caught.value.message


def test_flags_override_variables_override_the_file(home, monkeypatch):
    write_conf(home, url="http://file:1", user="filer", env="fenv", token="filetoken")
    assert config.load() == config.Settings(url="http://file:1", user="filer", env="fenv", token="filetoken")
    monkeypatch.setenv("CORPUS_URL", "http://var:2")
    monkeypatch.setenv("CORPUS_ENV", "venv")
    settings = config.load()
    assert (settings.url, settings.user, settings.env) == ("http://var:2", "filer", "venv")
    settings = config.load({"url": "http://flag:3", "token": None})
    assert (settings.url, settings.token) == ("http://flag:3", "filetoken")


def test_token_file_is_read_when_the_file_has_none(home):
    write_conf(home, url="http://file:1")
    config.save_token("saved")
    assert config.load().token == "saved"
    mode = stat.S_IMODE(config.token_path().stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(config.token_path().parent.stat().st_mode) == 0o700


def test_corpus_config_names_another_file(home, monkeypatch):
    other = home / "other.conf"
    other.write_text("[corpus]\nurl = http://other:4\n")
    monkeypatch.setenv("CORPUS_CONFIG", str(other))
    assert config.load().url == "http://other:4"


def test_a_broken_file_is_one_sentence(home):
    (home / ".makinastates.conf").write_text("url = no section\n")
    result = run_corpus(["status", "x"], home)
    assert result.returncode == 2
    assert "Cannot read" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_save_keeps_other_keys(home):
    write_conf(home, env="mine")
    config.save_file_values(url="http://c:8000", user="alice")
    assert config.read_file() == {"env": "mine", "url": "http://c:8000", "user": "alice"}
    assert stat.S_IMODE((home / ".makinastates.conf").stat().st_mode) == 0o600


def test_global_options_anywhere():
    assert hoist_global_options(["status", "web", "--json", "--url", "http://x"]) == \
        ["--json", "--url", "http://x", "status", "web"]
    assert hoist_global_options(["jobs", "--token=abc"]) == ["--token=abc", "jobs"]
    assert hoist_global_options(["push", "--", "--json"]) == ["push", "--", "--json"]


def test_login_stores_the_token_0600_and_the_url(api, home):
    result = run_corpus(["--url", api.url, "login", "--user", "alice", "--password-stdin"], home, stdin="secret\n")
    assert result.returncode == 0, result.stderr
    assert "Logged in to" in result.stdout and "acme (admin)" in result.stdout
    token_file = home / ".config" / "corpus" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert api.state.tokens[token] == "alice"
    assert config.read_file(home / ".makinastates.conf") == {"url": api.url, "user": "alice"}
    # The next verb finds the controller and the token by itself.
    whoami = run_corpus(["whoami", "--json"], home)
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["name"] == "alice"


def test_variables_and_flags_win_over_the_file(api, home):
    write_conf(home, url="http://127.0.0.1:1", token="expired")
    refused = run_corpus(["whoami"], home)
    assert refused.returncode == 1 and "Cannot reach the controller at http://127.0.0.1:1" in refused.stderr
    by_variable = run_corpus(["whoami"], home, env={"CORPUS_URL": api.url})
    assert by_variable.returncode == 3, by_variable.stderr  # the file's token is an expired one
    good = api.token_for("alice")
    by_variables = run_corpus(["whoami", "--json"], home, env={"CORPUS_URL": api.url, "CORPUS_TOKEN": good})
    assert by_variables.returncode == 0 and json.loads(by_variables.stdout)["name"] == "alice"
    by_flag = run_corpus(["whoami", "--json", "--token", "expired"], home,
                         env={"CORPUS_URL": api.url, "CORPUS_TOKEN": good})
    assert by_flag.returncode == 3


def test_bad_password_is_exit_3(api, home):
    result = run_corpus(["--url", api.url, "login", "-u", "alice", "--password-stdin", "--json"], home,
                        stdin="wrong\n")
    assert result.returncode == 3
    assert json.loads(result.stdout)["error"]["status"] == 401
    assert result.stderr.strip() == "corpus: Bad user name or password."
    assert not (home / ".config" / "corpus" / "token").exists()


def test_logout_forgets_the_token(api, home):
    token = api.token_for("alice")
    config.save_token(token)
    result = run_corpus(["--url", api.url, "logout"], home)
    assert result.returncode == 0, result.stderr
    assert token not in api.state.tokens
    assert not config.token_path().exists()
