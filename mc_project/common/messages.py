"""The line of an error text that says what went wrong, for a one-sentence message.

Every line helper returns the line stripped, without its final period, or ``default``
when the text has no line.
"""


def lines(text):
    """The non-empty lines of ``text`` (bytes are decoded), stripped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def first_line(text, default=""):
    found = lines(text)
    return found[0].rstrip(".") if found else default


def last_line(text, default=""):
    found = lines(text)
    return found[-1].rstrip(".") if found else default


TRACEBACK = "Traceback (most recent call last):"


def summary(text, default=""):
    """What a Salt answer says went wrong: its first line, or, for a traceback (whose first
    line says only "Traceback"), what comes before it and the exception in its last line, as
    in "The minion function caused an exception: OSError: ..."; Salt's ``ERROR:`` prefix goes."""
    text = (text or "").strip()
    for prefix in ("ERROR: ", "ERROR:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    found = lines(text)
    if found and TRACEBACK in found[0]:
        before = found[0].split(TRACEBACK)[0].strip()
        return " ".join(part for part in (before, last_line(text)) if part) or default
    return first_line(text, default)


def reason(exc):
    """The first line of an exception's message, else its type's name."""
    return first_line(str(exc)) or type(exc).__name__
