"""Data migration run by the post_deploy phase: brings data/db.json to schema 2."""

import json
import os
import sys

db_path = os.path.join(sys.argv[1], "db.json")
db = {"schema": 0, "visits": 0}
if os.path.exists(db_path):
    with open(db_path, encoding="utf-8") as fh:
        db = json.load(fh)
if db.get("schema", 0) < 2:
    db["schema"] = 2
    db.setdefault("visits", 0)
    with open(db_path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(db, fh)
    os.replace(db_path + ".tmp", db_path)
    print("migrated {} to schema 2".format(db_path))
else:
    print("{} already at schema {}".format(db_path, db["schema"]))
