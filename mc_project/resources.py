"""Where corpus keeps the files that are not Python library code.

The Salt loader modules (``_modules/``, ``_states/``, ``_runners/`` ...), the
state tree (``salt/``) and the git hooks (``hooks/``) live at the root of the
source tree. A regular ``pip install .`` copies them into the installed
package under ``mc_project/_data/`` (see ``setup.py``); an editable install or
a plain checkout reads them from the source tree. The functions here hide that
difference.

``loader_dirs`` is also the ``salt.loader`` entry point declared in
``setup.py``: Salt calls it and loads the modules found in the directories it
returns, with no ``saltutil.sync_all`` needed.
"""

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# The repository root when running from a checkout or an editable install.
SOURCE_ROOT = os.path.dirname(PACKAGE_DIR)

# Copies made by ``setup.py``'s build step in a non-editable install.
INSTALLED_DATA_DIR = os.path.join(PACKAGE_DIR, "_data")

# A checkout (or an editable install of one) has setup.py beside the package;
# an installed copy sits in site-packages, where the parent holds other
# packages (Salt's own ``salt`` among them), so it must never be searched.
FROM_SOURCE = os.path.isfile(os.path.join(SOURCE_ROOT, "setup.py"))
BASE_DIR = SOURCE_ROOT if FROM_SOURCE else INSTALLED_DATA_DIR

# Salt loader types shipped when a matching ``_<type>/`` directory exists.
# The three core ones are always announced so Salt can be pointed at them.
CORE_LOADER_TYPES = ("modules", "states", "runners")
LOADER_TYPES = CORE_LOADER_TYPES + (
    "grains",
    "pillar",
    "utils",
    "clouds",
    "returners",
    "beacons",
    "engines",
    "renderers",
    "output",
    "proxy",
    "sdb",
    "serializers",
    "executors",
    "tops",
    "wheel",
    "roster",
)


def resource_path(name):
    """Return the absolute path of the top-level resource directory ``name``.

    ``name`` is a directory of the source root such as ``"salt"``, ``"hooks"``
    or ``"_modules"``: in a checkout or an editable install it is that
    directory, in a regular install its copy under ``mc_project/_data/``.
    The path is returned even when the directory does not exist.
    """
    return os.path.join(BASE_DIR, name)


def loader_dirs():
    """Return Salt's loader directories, keyed by loader type.

    The shape is the one Salt's ``salt.loader`` entry points expect, for
    example ``{"modules": [".../_modules"], "states": [...], "runners":
    [...]}``; every path is absolute.
    """
    dirs = {}
    for loader_type in LOADER_TYPES:
        path = resource_path("_" + loader_type)
        if loader_type in CORE_LOADER_TYPES or os.path.isdir(path):
            dirs[loader_type] = [path]
    return dirs


def salt_tree():
    """Return the absolute path of the Salt state tree (``salt/``)."""
    return resource_path("salt")


def hooks_dir():
    """Return the absolute path of the git hooks directory (``hooks/``)."""
    return resource_path("hooks")
