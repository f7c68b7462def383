"""Hold a phase on demand, so a test can act while a deploy is at a known point.

A committed file ``PAUSE`` holds lines ``PHASE=GATE`` (GATE an absolute path).
When this runs for PHASE and GATE exists, it writes ``GATE.reached`` (its pid)
and waits while GATE exists, at most 120 seconds. Without ``PAUSE`` or without
a line for PHASE it returns at once.
"""

import os
import sys
import time

phase = sys.argv[1]
gates = {}
if os.path.exists("PAUSE"):
    for line in open("PAUSE", encoding="utf-8"):
        key, _, value = line.strip().partition("=")
        if key and value:
            gates[key] = value
gate = gates.get(phase)
if gate and os.path.exists(gate):
    with open(gate + ".reached", "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    deadline = time.monotonic() + 120
    while os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.1)
print("{}: {}".format(phase, "held by " + gate if gate else "no pause"))
