"""``python -m mc_project.cli``: the ``corpus`` command without its console script."""

from .main import main

main()
