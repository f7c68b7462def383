"""Disk sizes as people write them: ``10G``, ``512M``, ``1.5G``, ``1T``; a plain number is MiB."""

import re

from .errors import EXIT_BAD_INPUT, CliError

UNITS = {"": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([MGT]?)(?:I?B)?\s*$", re.I)


def parse_size_mb(text):
    """``text`` in MiB (an int), or exit 2 with one sentence."""
    match = SIZE_RE.match(str(text or ""))
    if match:
        mib = float(match.group(1)) * UNITS[match.group(2).upper()]
        if mib >= 1 and mib == int(mib):
            return int(mib)
    raise CliError(f"Bad size {text!r}: give a whole number of MiB, or one with M, G or T such as 512M, 10G "
                   "or 1.5G", EXIT_BAD_INPUT)
