"""A node installs the packages it lacks, and only those, before its first container."""

from mc_project.node import host


def test_packages_are_installed_only_when_their_tools_are_missing(monkeypatch):
    ran = []
    monkeypatch.setattr(host, "run", lambda args, what, **kw: ran.append(args))
    monkeypatch.setattr(host, "_present", lambda tool: tool not in ("haproxy", "debootstrap"))
    assert host.ensure_packages() == ["debootstrap", "haproxy"]
    assert ran == [["apt-get", "update"], ["apt-get", "install", "-y", "debootstrap", "haproxy"]]

    ran.clear()
    monkeypatch.setattr(host, "_present", lambda tool: True)
    assert host.ensure_packages() == []
    assert ran == []
