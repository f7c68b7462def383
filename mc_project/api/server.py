"""``corpus-api``: serve the controller's REST API with uvicorn.

``corpus-api --config ROOT/etc/salt/master`` (or ``--root ROOT``) reads the
master's options -- the inventory, the event bus, and the ``corpus_api``
settings (bind address, port, TLS certificate and key, LDAP, token lifetime) --
and serves until stopped. ``corpus-controller init`` starts it beside the
master. A bad setting or a port in use is one sentence and exit status 2.
"""

import argparse
import logging
import os
import sys

import salt.config

from mc_project.api import settings
from mc_project.common.ports import port_in_use
from mc_project.errors import CorpusError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def parser():
    main_parser = argparse.ArgumentParser(prog="corpus-api", description="Serve the corpus controller's REST API.")
    where = main_parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="the salt-master configuration file")
    where.add_argument("--root", help="the controller root (corpus-controller init --root)")
    main_parser.add_argument("--bind", help="address to listen on (default: the corpus_api setting)")
    main_parser.add_argument("--port", type=int, help="port to listen on (default: the corpus_api setting)")
    main_parser.add_argument("--log-level", default="warning")
    return main_parser


def main(argv=None):
    args = parser().parse_args(argv)
    path = args.config or os.path.join(args.root, "etc", "salt", "master")
    if not os.path.isfile(path):
        print("No master configuration at {}: run corpus-controller init first.".format(path), file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        opts = salt.config.master_config(path)
        chosen = settings.api_settings(opts)
    except CorpusError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    host = args.bind or chosen["bind"]
    port = args.port or chosen["port"]
    if port_in_use(host, port):
        print("Port {} on {} is already in use; choose another with --api-port.".format(port, host), file=sys.stderr)
        return EXIT_BAD_INPUT
    import uvicorn

    from mc_project.api.app import create_app

    try:
        app = create_app(opts)
    except CorpusError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    uvicorn.run(app, host=host, port=port, ssl_certfile=chosen["tls_cert"], ssl_keyfile=chosen["tls_key"],
                log_level=args.log_level, access_log=False, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
