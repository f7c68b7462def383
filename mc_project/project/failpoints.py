"""Named points where a deploy can be made to die, to prove crash recovery.

``CORPUS_KILL_AT=NAME`` in a deploy's environment makes it kill itself with SIGKILL
when it reaches the point ``NAME`` (``before:STEP``, ``after:STEP``, ``phase:PHASE``,
``commit``): the same as a power cut there, with nothing flushed or cleaned. Unset,
a point costs one dictionary lookup.
"""

import os
import signal

VARIABLE = "CORPUS_KILL_AT"


def reach(name):
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
