"""A Salt answer's error comes down to the line that says what went wrong."""

from mc_project.common import messages

TRACE = """Traceback (most recent call last):
  File "/srv/salt/minion.py", line 10, in call
    clone()
OSError: [Errno 28] No space left on device."""


def test_a_traceback_comes_down_to_its_exception_after_what_salt_said_before_it():
    assert messages.summary("The minion function caused an exception: " + TRACE) == (
        "The minion function caused an exception: OSError: [Errno 28] No space left on device")
    assert messages.summary("ERROR: " + TRACE) == "OSError: [Errno 28] No space left on device"


def test_other_answers_come_down_to_their_first_line():
    assert messages.summary("ERROR: Minion did not return.\nmore") == "Minion did not return"
    assert messages.summary("", "no answer") == "no answer"
