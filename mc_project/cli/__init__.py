"""The ``corpus`` command on a developer's machine: one module per group of verbs.

It talks only to the controller's REST API (``/v1/...``), never to Salt: ``client``
is the HTTP side (errors, Server-Sent Events), ``config`` where the controller, the
user and the token come from, ``progress`` how a job's steps are shown, and
``envs``, ``projects``, ``jobs``, ``auth``, ``push`` the verbs.
"""
