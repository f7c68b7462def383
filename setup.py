"""Packaging for corpus (the ``mc_project`` Salt extension).

Besides the ``mc_project`` library, a regular (non-editable) install ships
copies of the Salt loader directories (``_modules/``, ``_states/``,
``_runners/`` and any other ``_<type>/``), the state tree ``salt/`` and the
git hooks ``hooks/`` inside the package, under ``mc_project/_data/``. They
stay plain directories at the repository root so a salt-master can also serve
them from its ``file_roots`` with ``saltutil.sync_all``.
``mc_project.resources`` finds them in either place, and its ``loader_dirs``
is the ``salt.loader`` entry point, so Salt sees the modules with no sync.
"""

import os
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))

# Where the copies go inside the installed package (see mc_project/resources.py).
DATA_PACKAGE_DIR = os.path.join("mc_project", "_data")

# Salt loader directories follow Salt's own naming: ``_modules``, ``_states``...
LOADER_DIR_RE = re.compile(r"^_[a-z]+$")
OTHER_RESOURCE_DIRS = ("salt", "hooks")
SKIPPED_NAMES = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def read_version():
    """Read ``__version__`` from mc_project/__init__.py without importing it."""
    try:
        with open(os.path.join(HERE, "mc_project", "__init__.py"), encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return "0.0.0"
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return match.group(1) if match else "0.0.0"


def resource_dirs():
    """Top-level directories to ship inside the package, by name."""
    names = [
        name
        for name in sorted(os.listdir(HERE))
        if LOADER_DIR_RE.match(name) and os.path.isdir(os.path.join(HERE, name))
    ]
    names.extend(name for name in OTHER_RESOURCE_DIRS if os.path.isdir(os.path.join(HERE, name)))
    return names


def resource_files():
    """Yield ``(source, relative destination)`` for every file to ship."""
    for top in resource_dirs():
        for dirpath, dirnames, filenames in os.walk(os.path.join(HERE, top)):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_NAMES)
            for filename in sorted(filenames):
                if filename.endswith(SKIPPED_SUFFIXES):
                    continue
                source = os.path.join(dirpath, filename)
                yield source, os.path.join(DATA_PACKAGE_DIR, os.path.relpath(source, HERE))


class BuildPyWithResources(build_py):
    """``build_py`` that also copies the Salt and hook trees into the package.

    Editable installs skip the copy: there ``mc_project.resources`` reads the
    source tree directly, so edits show up without reinstalling.
    """

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        # Start from a clean copy so files deleted from the tree do not linger
        # in a reused build/ directory.
        self.remove_tree_quietly(os.path.join(self.build_lib, DATA_PACKAGE_DIR))
        for source, relative in resource_files():
            target = os.path.join(self.build_lib, relative)
            self.mkpath(os.path.dirname(target))
            # copy_file keeps the mode bits: hooks stay executable.
            self.copy_file(source, target, preserve_mode=True)

    @staticmethod
    def remove_tree_quietly(path):
        if os.path.isdir(path):
            shutil.rmtree(path)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode=include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [os.path.join(self.build_lib, rel) for _, rel in resource_files()]


setup(
    name="corpus",
    version=read_version(),
    description="A git-push PaaS and fleet controller built as a Salt extension",
    python_requires=">=3.10",
    packages=find_packages(include=["mc_project", "mc_project.*"]),
    include_package_data=False,
    # The inventory's Alembic script template (migrations are packages already), and the
    # web page's templates and static files (CSS, script, the vendored htmx and its licences).
    package_data={"mc_project.inventory": ["migrations/*.mako"],
                  "mc_project.web": ["templates/*.html", "static/*.css", "static/*.js", "static/vendor/*"]},
    install_requires=[
        # Newer 3008 releases need a certifi release the package index lacks.
        "salt==3008.3",
        "GitPython",
        "Jinja2",
        "PyYAML",
        "supervisor",
        "psutil",
        "requests",
        "SQLAlchemy>=2,<3",
        "alembic",
        "paramiko",
        "cryptography",
        "dnspython",
        "pydantic>=2,<3",
        # PostgreSQL inventories; the binary wheel needs no libpq headers.
        "psycopg2-binary",
    ],
    # Compute nodes and containers need neither: their wheelhouse stays small.
    extras_require={
        # The controller's REST API (corpus-api) and its logins.
        # orjson: the inventory's exports decode one JSON mapping per host, twice as fast.
        # httpx: the fleet health's webhooks. ansible-core and ansible-runner: corpus playbook.
        "api": ["fastapi", "uvicorn", "ldap3", "argon2-cffi", "orjson", "httpx", "ansible-core", "ansible-runner"],
        # The corpus command on a developer's machine, which talks only to the API.
        "cli": ["typer", "rich", "httpx"],
        "test": [
            "corpus[api,cli]",
            "pytest",
            "pytest-salt-factories==1.0.5",
            "pytest-timeout",
            # make test runs independent test modules side by side (--dist loadgroup).
            "pytest-xdist",
            "ruff",
            "aiosmtpd",
            "schemathesis",
            # The inventory's test runs a real ansible-playbook over the corpus-inventory script.
            "ansible-core",
            # The web page's tests drive Debian's chromium (scripts/install-deps).
            "playwright",
        ],
    },
    entry_points={
        "salt.loader": ["corpus = mc_project.resources:loader_dirs"],
        "console_scripts": [
            "corpus-controller = mc_project.controller.cli:main",
            "corpus-api = mc_project.api.server:main",
            "corpus = mc_project.cli.main:main",
            # An Ansible dynamic inventory script: ansible-playbook -i $(which corpus-inventory).
            "corpus-inventory = mc_project.cli.ansible_inventory:main",
        ],
    },
    cmdclass={"build_py": BuildPyWithResources},
    zip_safe=False,
)
