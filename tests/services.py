"""The old import path of ``support.services``, kept while bench/controller.py and the
controller tests (tests/integration/controller/) still import ``services``: the code
lives in tests/support/services.py and tests/support/ports.py. Remove once they import
``support.services`` and ``support.ports``."""

from support.ports import free_port  # noqa: F401
from support.services import PDNS_SERVER, PdnsServer, SmtpSink, dns_query  # noqa: F401
