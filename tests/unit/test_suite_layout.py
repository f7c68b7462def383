"""The test tree itself: pytest imports each test module by its basename (there are no
__init__.py files), so two modules of the same name anywhere under tests/ stop the
whole suite from collecting, even when each directory alone runs."""

import collections
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_test_module_basenames_are_unique_across_the_tree():
    seen = collections.defaultdict(list)
    for top, dirs, files in os.walk(TESTS):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.startswith("test_") and name.endswith(".py"):
                seen[name].append(os.path.relpath(os.path.join(top, name), TESTS))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
