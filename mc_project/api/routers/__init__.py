"""One router per resource of ``/v1``."""
