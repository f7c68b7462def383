"""The chat bridge: job progress posted to each tenant's webhook (``outgoing``, its texts
in ``messages``) and commands from chat (``incoming``: ``status``, ``deploy``,
``redeploy``, parsed by ``commands`` and run by ``actions``), with each tenant's chat
settings kept by ``settings``."""
