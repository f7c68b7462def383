"""``corpus-inventory``: the controller's inventory as an Ansible dynamic inventory script.

    ansible-playbook -i $(which corpus-inventory) site.yml
    corpus-inventory --list            # every host, its groups and its variables (JSON)
    corpus-inventory --host NAME       # one host's variables (Ansible never needs it: --list has _meta)
    corpus-inventory --roster          # a salt-ssh roster (YAML) of the hosts without a minion

It reads the controller's URL and token as ``corpus`` does (``~/.makinastates.conf``,
``corpus login``'s token, ``CORPUS_URL``, ``CORPUS_TOKEN``); ``CORPUS_TENANT`` keeps
one tenant's hosts. An error is one sentence on stderr and a non-zero exit.
"""

import argparse
import json
import os
import sys

import yaml

from .client import Client
from .config import load
from .errors import CliError, sentence

TENANT_ENV_VAR = "CORPUS_TENANT"


def parser():
    found = argparse.ArgumentParser(prog="corpus-inventory", description="The corpus inventory for Ansible.")
    what = found.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="every host, its groups and variables (JSON)")
    what.add_argument("--host", metavar="NAME", help="one host's variables (JSON)")
    what.add_argument("--roster", action="store_true", help="a salt-ssh roster of the hosts without a minion")
    found.add_argument("--tenant", default=os.environ.get(TENANT_ENV_VAR), help="one tenant's hosts only")
    return found


def run(argv=None, transport=None):
    args = parser().parse_args(argv)
    settings = load({})
    with Client(settings.require_url(), settings.token, transport=transport) as client:
        if args.roster:
            found = client.get("/v1/salt-roster", tenant=args.tenant)
            sys.stdout.write(yaml.safe_dump(found, default_flow_style=False, sort_keys=True) if found else "{}\n")
            return 0
        inventory = client.get("/v1/ansible-inventory", tenant=args.tenant)
    if args.host is not None:
        inventory = inventory.get("_meta", {}).get("hostvars", {}).get(args.host, {})
    sys.stdout.write(json.dumps(inventory, sort_keys=True) + "\n")
    return 0


def main(argv=None):
    try:
        code = run(argv)
    except CliError as exc:
        sys.stderr.write("corpus-inventory: {}\n".format(exc.message))
        code = exc.exit_code
    except BrokenPipeError:
        code = 1
    except Exception as exc:  # the promise: one sentence, never a traceback
        sys.stderr.write("corpus-inventory: {}\n".format(sentence("Unexpected error ({}): {}".format(
            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))))
        code = 1
    sys.exit(code)
