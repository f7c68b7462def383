"""The controller's REST API (FastAPI, served by uvicorn as ``corpus-api``).

``app.create_app`` builds it over a ``runtime.Controller``; ``server.main`` runs it
beside the salt-master. One router per resource in ``routers/``; who is calling is
``auth`` (tokens, local users) and ``ldap``; what they may see is ``tenants``;
long work is a job of the controller's own job machinery (``background``), watched
as Server-Sent Events (``sse``); every changing call is recorded (``audit``).
"""
