"""The words every layer of corpus uses the same way: env types, modes, name rules, paths.

Standard library only: the push path (``mc_project.project.agent_client``) imports it.
"""

import re

# --------------------------------------------------------------------------- envs and modes

ENV_TYPES = ("dev", "staging", "prod")
MODES = ("editable", "cooking", "final")
MODE_OF_ENV = {"dev": "editable", "staging": "cooking", "prod": "final"}

# Environments that hold a slot, an address and a port on their node.
LIVE_ENV_STATUSES = ("creating", "active")

# --------------------------------------------------------------------------- names

PROJECT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# An environment's name is a DNS label: it becomes its container's name and the first
# label of its domain.
ENV_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# A compute node's name (and its minion id), and an SSH user name.
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
NFT_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
# A path given to a node's shell: absolute, no whitespace nor shell syntax.
PATH_RE = re.compile(r"^/[A-Za-z0-9._/+-]*$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

# --------------------------------------------------------------------------- defaults

PROJECTS_ROOT = "/srv/projects"  # where a host keeps its projects
NODE_PREFIX = "/srv/corpus"  # where corpus installs itself on a compute node
LXC_PATH = "/var/lib/lxc"
APP_PORT = 8080  # where a container's web process listens; the node's proxy sends HTTP there
MINION_UNIT = "corpus-minion.service"  # the systemd unit of every minion corpus installs
