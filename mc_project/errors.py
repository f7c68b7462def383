"""The one error type corpus raises for anything a user can fix.

Its message is a single sentence meant for the user; loader modules turn it into
Salt's ``CommandExecutionError`` so ``salt-call`` prints it and exits non-zero.
"""


class CorpusError(Exception):
    """A user-facing failure: bad input, a refused operation, a failed deploy."""
