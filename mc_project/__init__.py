"""corpus: a git-push PaaS and fleet controller built as a Salt extension."""

__version__ = "0.1.0"
