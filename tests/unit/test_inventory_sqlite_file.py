"""A SQLite inventory: in WAL mode (jobs write while others read), every file of it 0600."""

import os
import sqlite3
import stat

from sqlalchemy import text

from mc_project.inventory import db


def test_the_inventory_and_its_wal_files_are_private_and_a_reader_does_not_block_a_writer(tmp_path):
    path = tmp_path / "corpus" / "inventory.sqlite"
    url = "sqlite:///{}".format(path)
    db.init(url)
    reader = sqlite3.connect(str(path))
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM jobs").fetchall()  # a read transaction left open
    with db.engine(url).begin() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        conn.execute(text("CREATE TABLE written (x INTEGER)"))  # not blocked by the reader
    reader.close()
    files = sorted(name for name in os.listdir(path.parent))
    assert {"inventory.sqlite", "inventory.sqlite-wal", "inventory.sqlite-shm"} <= set(files)
    for name in files:
        assert stat.S_IMODE(os.stat(path.parent / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
