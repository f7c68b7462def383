"""Opening a current inventory costs one query: its revision, compared with the newest
migration's, which its file name gives (so every migration must be named after its revision)."""

import os
import re
import subprocess
import sys

from mc_project.inventory import db

VERSIONS = os.path.join(db.MIGRATIONS_DIR, "versions")


def test_each_migration_is_named_after_its_revision():
    for name in sorted(os.listdir(VERSIONS)):
        if not name.endswith(".py") or name == "__init__.py":
            continue
        assert db.MIGRATION_FILE_RE.fullmatch(name), name
        with open(os.path.join(VERSIONS, name), encoding="utf-8") as fh:
            revision = re.search(r"^revision = ['\"](\w+)['\"]", fh.read(), re.M).group(1)
        assert revision == name[:4], name


def test_the_head_from_file_names_is_alembics():
    assert db.shipped_head() == db.head_revision()


def test_a_current_inventory_opens_without_alembic(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    assert db.current_revision(url) is None
    assert db.init(url) == db.shipped_head()
    probe = ("import sys; from mc_project.inventory import db; "
             "print(db.init({!r}), 'alembic' in sys.modules)".format(url))
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == [db.shipped_head(), "False"]
