"""The migration of the test app (post_deploy): make sure the table exists."""

import sqlite3
import sys

if __name__ == "__main__":
    if sys.argv[1] == "sqlite":
        conn = sqlite3.connect(sys.argv[2], timeout=30)
        conn.execute("CREATE TABLE IF NOT EXISTS hits (n INTEGER PRIMARY KEY, at TEXT)")
        conn.commit()
