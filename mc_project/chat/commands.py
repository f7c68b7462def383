"""What a chat message asks: ``status NAME``, ``deploy NAME`` or ``redeploy NAME``.

Slack's and Mattermost's outgoing webhooks send the whole message, trigger word
included (``corpus status web``); their slash commands send the text after the
command (``status web``). ``parse`` takes either and gives ``(verb, name)``, or None
for anything else, which is answered with ``HELP``.
"""

import re

VERBS = ("status", "deploy", "redeploy")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
HELP = ("I know: `status NAME` (an environment's state and its last job), `deploy NAME` (deploy its "
        "project again) and `redeploy NAME` (redeploy the environment).")


def parse(text, trigger_word=None):
    """``(verb, environment name)`` of a chat message, or None when it asks nothing known."""
    words = str(text or "").split()
    if words and trigger_word and words[0].lower() == str(trigger_word).lower():
        words = words[1:]
    elif words and words[0].startswith(("/", "@")):  # a slash command or a mention of the bot
        words = words[1:]
    if len(words) != 2:
        return None
    verb, name = words[0].lower(), words[1].strip("`'\"")
    if verb not in VERBS or not NAME_RE.fullmatch(name):
        return None
    return verb, name
