"""The old import path of the engine tests' helpers, kept while the controller tests
(tests/integration/controller/test_environments.py) still import ``helpers``: the code
lives in tests/support/corpus.py and tests/support/git.py. Remove once they import
``support.corpus`` and ``support.git``."""

from support.corpus import EXAMPLES  # noqa: F401
from support.git import git  # noqa: F401
