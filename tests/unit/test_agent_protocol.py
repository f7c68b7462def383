"""The deploy agent's framing (JSON lines) and the client's side of one exchange."""

import json
import socket
import subprocess
import sys
import threading

import pytest

from mc_project.project import agent_client as proto


def test_encode_is_one_ascii_line_whatever_the_strings_hold():
    message = {"out": "first\nsecond\r\n\ttab \u00e9\u2603 \x00", "n": 1}
    line = proto.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("ascii")
    assert proto.decode(line) == message


def test_encode_uses_repr_for_what_json_cannot_hold():
    assert proto.decode(proto.encode({"x": object}))["x"] == repr(object)


def test_encode_and_decode_refuse_what_is_not_an_object():
    with pytest.raises(proto.ProtocolError):
        proto.encode(["not", "a", "mapping"])
    for line in (b"[1, 2]\n", b"not json\n", b'"text"', b"{broken"):
        with pytest.raises(proto.ProtocolError):
            proto.decode(line)


def test_line_reader_gives_whole_messages_whatever_the_chunks():
    messages = [{"started": 12}, {"out": "-----> build"}, {"out": ""}, {"ret": {"a": [1, 2]}, "retcode": 0}]
    stream = b"".join(proto.encode(m) for m in messages)
    for size in (1, 2, 3, 7, 64, len(stream)):
        reader = proto.LineReader()
        got = []
        for start in range(0, len(stream), size):
            got += reader.feed(stream[start:start + size])
        assert got == messages, size
        assert reader.pending() == 0


def test_line_reader_skips_blank_lines_and_bounds_a_line():
    reader = proto.LineReader(max_line=10)
    assert reader.feed(b'\n\n{"a":1}\n\n') == [{"a": 1}]
    with pytest.raises(proto.ProtocolError):
        reader.feed(b"x" * 11)


def test_messages_over_a_socket_and_a_cut_message():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(proto.encode({"out": "one"}) + proto.encode({"ret": 1, "retcode": 0}))
        left.shutdown(socket.SHUT_WR)
        assert list(proto.messages(right)) == [{"out": "one"}, {"ret": 1, "retcode": 0}]
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b'{"out": "cut')
        left.close()
        with pytest.raises(proto.ProtocolError):
            list(proto.messages(right))


def test_read_message_leaves_what_follows_on_the_socket():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(proto.encode({"op": "call"}) + b'{"next"')
        assert proto.read_message(right, timeout=5) == {"op": "call"}
        assert right.recv(100) == b'{"next"'
        left.close()
        with pytest.raises(proto.ProtocolError):
            proto.read_message(right, timeout=5)


def agent_side(conn, replies):
    """A fake agent: read the request, send ``replies`` (message or raw bytes), close."""
    with conn:
        request = proto.read_message(conn, timeout=5)
        for reply in replies:
            conn.sendall(reply if isinstance(reply, bytes) else proto.encode(reply))
    return request


def run_exchange(replies, request=None):
    client, server = socket.socketpair()
    seen = {}
    thread = threading.Thread(target=lambda: seen.update(request=agent_side(server, replies)))
    thread.start()
    out = []
    try:
        with client:
            result = proto.exchange(client, request or {"op": "call", "fun": "test.true"}, out=out.append)
    finally:
        thread.join(timeout=10)
    return result, out, seen.get("request")


def test_exchange_relays_lines_in_order_and_returns_the_final_message():
    result, out, request = run_exchange([{"started": 42}, {"out": "-----> backup"}, {"out": "x"},
                                         {"ret": {"status": "success"}, "retcode": 0}],
                                        request={"op": "call", "fun": "mc_project.deploy", "args": ["app"]})
    assert request == {"op": "call", "fun": "mc_project.deploy", "args": ["app"]}
    assert out == ["-----> backup", "x"]
    assert result["retcode"] == 0 and result["ret"] == {"status": "success"}


def test_exchange_retries_only_when_nothing_ran():
    with pytest.raises(proto.Retry, match="code changed"):
        run_exchange([{"restart": "the corpus code changed"}])
    with pytest.raises(proto.Retry):
        run_exchange([])  # an agent that stopped before answering
    # Once the call started, a vanished worker is a failed call, never a second run.
    result, out, _ = run_exchange([{"started": 1}, {"out": "-----> build"}])
    assert result["retcode"] == 1 and "without a result" in result["error"]
    assert out == ["-----> build"]
    result, _, _ = run_exchange([{"started": 1}, b'{"out": "cut'])
    assert result["retcode"] == 1


def test_exchange_passes_a_failing_retcode_through():
    result, out, _ = run_exchange([{"started": 7}, {"out": "Error running 'mc_project.deploy': boom"},
                                   {"ret": None, "retcode": 1}])
    assert result["retcode"] == 1 and out == ["Error running 'mc_project.deploy': boom"]


def test_a_pusher_reads_corpus_sentence_without_salts_wrapper():
    lines = []
    relay = proto.for_pusher("mc_project.deploy", lines.append)
    relay("Error running 'mc_project.deploy': Deploy of app 1234 failed in phase build and was rolled back: boom")
    relay("-----> build")
    relay("Error running 'mc_project.other': kept")
    assert lines == ["Deploy of app 1234 failed in phase build and was rolled back: boom", "-----> build",
                     "Error running 'mc_project.other': kept"]
    assert proto.parse_args(["--pusher", "-c", "/x", "mc_project.deploy", "app"]).pusher


def test_parse_args_takes_the_config_from_the_hooks_salt_call():
    opts = proto.parse_args(["--salt-call", "/venv/bin/salt-call -c '/srv/my salt' --local",
                             "--projects-root", "/srv/projects", "--out-file", "/tmp/r.json",
                             "mc_project.deploy", "app", "ref=refs/heads/main", "who=dev@host"])
    assert opts.config_dir == "/srv/my salt" and opts.local is True
    assert opts.projects_root == "/srv/projects" and opts.out_file == "/tmp/r.json"
    assert opts.fun == "mc_project.deploy" and opts.args == ["app", "ref=refs/heads/main", "who=dev@host"]

    opts = proto.parse_args(["-c", "/etc/salt", "--", "--not-an-option", "x"])
    assert (opts.config_dir, opts.local, opts.fun, opts.args) == ("/etc/salt", False, "--not-an-option", ["x"])
    opts = proto.parse_args(["--salt-call=salt-call", "test.true"])
    assert opts.config_dir == "/etc/salt" and not opts.local
    for bad in ([], ["--bogus", "x"], ["-c"]):
        with pytest.raises(SystemExit):
            proto.parse_args(bad)


def test_request_forwards_who_and_the_kill_switch(monkeypatch):
    opts = proto.parse_args(["-c", "/etc/salt", "mc_project.deploy", "app", "who=dev@host"])
    monkeypatch.setenv("CORPUS_KILL_AT", "build")
    request = proto.request_for(opts, hook_started=12.5)
    assert request["who"] == "dev@host" and request["env"] == {"CORPUS_KILL_AT": "build"}
    assert request["timings"]["hook"] == 12.5 and json.loads(proto.encode(request))
    monkeypatch.delenv("CORPUS_KILL_AT")
    assert proto.request_for(opts)["env"] == {}


def test_the_client_imports_only_the_standard_library():
    code = ("import sys; before = set(sys.modules); import mc_project.project.agent_client; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in ('salt', 'yaml', 'git', 'jinja2', 'msgpack')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
