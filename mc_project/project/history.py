"""The deploy history: one JSON record per deploy or rollback, in ``history.json``.

Written whole through a temporary file and a rename, so a crash never leaves it
half-written. Only the holder of the deploy lock writes it.
"""

import json
import os
import time


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save(path, records):
    tmp = "{}.tmp-{}".format(path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(records, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def upsert(path, record):
    """Add ``record``, or replace the one with the same id."""
    records = load(path)
    for i, old in enumerate(records):
        if old.get("id") == record["id"]:
            records[i] = record
            break
    else:
        records.append(record)
    save(path, records)
    return record


def find(records, release_id):
    for record in records:
        if record.get("id") == release_id:
            return record
    return None


def last_deploy(records):
    """The newest successful deploy record, or None."""
    return next((record for record in reversed(records)
                 if record.get("kind") == "deploy" and record.get("status") == "success"), None)


def last_deployed_commit(records):
    """Commit of the newest successful deploy: what the deploy branch should hold."""
    last = last_deploy(records)
    return last.get("commit") if last else None


def good_release_ids(records):
    """Ids of successful deploys that made a release, oldest first."""
    return [r["id"] for r in records
            if r.get("kind") == "deploy" and r.get("status") == "success" and r.get("release")]
