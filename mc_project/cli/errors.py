"""The one error the verbs raise: a sentence for the user and the exit code it means."""

# Exit codes of every verb.
EXIT_OK = 0
EXIT_FAILED = 1  # the work failed, or the controller could not be reached
EXIT_BAD_INPUT = 2  # a bad argument, or an object that is unknown or exists already
EXIT_NOT_ALLOWED = 3  # no token, an expired one, or a role too low


class CliError(Exception):
    """What went wrong, in one sentence, and the exit code for it."""

    def __init__(self, message, exit_code=EXIT_FAILED, status=None, data=None):
        super().__init__(message)
        self.data = data  # what ``--json`` adds to the error (a failed job's end)
        self.message = sentence(message)
        self.exit_code = exit_code
        self.status = status  # the HTTP status the API answered, if any


def sentence(text):
    """``text`` on one line, ending with a period (or another closing mark)."""
    text = " ".join(str(text or "").split()) or "Unknown error"
    return text if text[-1] in ".!?" else text + "."
