"""Dependencies and the Procfile: relocatable virtualenv scripts, the Python a project
asks for, Procfile parsing."""

import os
import shutil
import subprocess

import pytest

from mc_project.errors import CorpusError
from mc_project.project import deps, procfile


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    if mode:
        os.chmod(path, mode)


@pytest.mark.parametrize("head", ["#!/old/place/venv/bin/python\n",
                                  "#!/bin/sh\n'''exec' \"/old/place/venv/bin/python\" \"$0\" \"$@\"\n' '''\n"])
def test_scripts_find_the_python_beside_them_wherever_the_venv_moves(tmp_path, head):
    venv = tmp_path / "first"
    write(str(venv / "bin" / "tool"), head + "import sys\nprint('ran with', sys.argv[1:])\n", 0o755)
    os.symlink("/usr/bin/python3", str(venv / "bin" / "python"))
    write(str(venv / "bin" / "activate"), "# not a script with a shebang\n")
    deps.make_relocatable(str(venv))
    moved = tmp_path / "elsewhere" / "venv"
    os.makedirs(moved.parent)
    os.rename(venv, moved)
    out = subprocess.run([str(moved / "bin" / "tool"), "a", "b"], capture_output=True, text=True, check=True)
    assert out.stdout == "ran with ['a', 'b']\n"
    assert open(moved / "bin" / "activate").read() == "# not a script with a shebang\n"


def test_the_python_a_project_asks_for(tmp_path):
    tree = str(tmp_path)
    assert deps.wanted_python(tree) is None
    write(os.path.join(tree, "runtime.txt"), "python-3.11.7\n")
    assert deps.wanted_python(tree) == "3.11"
    write(os.path.join(tree, ".python-version"), "3.99\n")
    assert deps.wanted_python(tree) == "3.99"
    with pytest.raises(CorpusError, match="asks for Python 3.99, which this host does not have; it has"):
        deps.python_for(tree)
    write(os.path.join(tree, ".python-version"), "latest please\n")
    with pytest.raises(CorpusError, match=r"\.python-version says 'latest please'"):
        deps.wanted_python(tree)


def test_procfile_types_and_release(tmp_path):
    tree = str(tmp_path)
    write(os.path.join(tree, "Procfile"), "# comment\nweb: gunicorn app\nrelease: ./migrate\n\nworker: ./work\n")
    assert procfile.processes({}, tree) == {"web": "gunicorn app", "worker": "./work"}
    assert procfile.release_command(tree) == "./migrate"
    assert procfile.processes({"web": "mine"}, tree)["web"] == "mine"
    write(os.path.join(tree, "Procfile"), "web gunicorn\n")
    with pytest.raises(CorpusError, match="Procfile line 1 is not 'type: command'"):
        procfile.read(tree)


def test_no_procfile_serves_the_tree(tmp_path):
    assert procfile.processes({}, str(tmp_path))["web"].startswith("exec python3 -m http.server $PORT")


def test_local_sources_are_part_of_the_dependency_key(tmp_path):
    tree = str(tmp_path / "app")
    write(os.path.join(tree, "requirements.txt"),
          "flask==3.0\n-e .\n./libs/tool  # vendored\n-r extra/more.txt\n-e /etc\n")
    write(os.path.join(tree, "extra", "more.txt"), "./libs/other\n")
    write(os.path.join(tree, "libs", "tool", "setup.py"), "v1\n")
    write(os.path.join(tree, "libs", "other", "pyproject.toml"), "v1\n")
    write(os.path.join(tree, "app.py"), "code\n")
    found = deps.python_local_sources(tree)
    assert found == {"requirements.txt", "extra/more.txt", "libs/tool", "libs/other"}
    key = deps._digest(tree, deps.PYTHON_FILES, "py", found)
    write(os.path.join(tree, "app.py"), "other code\n")  # the project's own code runs from the release
    assert deps._digest(tree, deps.PYTHON_FILES, "py", deps.python_local_sources(tree)) == key
    write(os.path.join(tree, "libs", "other", "pyproject.toml"), "v2\n")
    assert deps._digest(tree, deps.PYTHON_FILES, "py", deps.python_local_sources(tree)) != key


@pytest.mark.needs("node")
def test_npm_ci_installs_a_file_dependency_and_rebuilds_when_it_changes(tmp_path):
    tree = str(tmp_path / "app")
    write(os.path.join(tree, "lib", "package.json"), '{"name": "lib", "version": "1.0.0", "main": "index.js"}\n')
    write(os.path.join(tree, "lib", "index.js"), "module.exports = 'one';\n")
    write(os.path.join(tree, "package.json"),
          '{"name": "app", "version": "1.0.0", "dependencies": {"lib": "file:lib"}}\n')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--offline"], cwd=tree, check=True,
                   capture_output=True)
    shutil.rmtree(os.path.join(tree, "node_modules"))
    cfg = {"paths": {"root": str(tmp_path / "root")}}
    lines = []
    first = deps.install_node(cfg, tree, lines.append)
    out = subprocess.run(["node", "-e", "console.log(require('lib'))"], cwd=tree, capture_output=True, text=True)
    assert out.stdout == "one\n"
    assert deps.install_node(cfg, tree, lines.append) == first  # unchanged: reused
    write(os.path.join(tree, "lib", "index.js"), "module.exports = 'two';\n")
    assert deps.install_node(cfg, tree, lines.append) != first
    out = subprocess.run(["node", "-e", "console.log(require('lib'))"], cwd=tree, capture_output=True, text=True)
    assert out.stdout == "two\n"
