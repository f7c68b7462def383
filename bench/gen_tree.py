"""Write a large, deterministic tree of files: the build step of the bench projects.

Copied into a bench project's repository as ``gen.py`` and run by its
``.salt/build.sls`` in the build tree. It reads ``bench.json``::

    {"files": 200, "file_kb": 1024, "version": 3, "change_pct": 1}

and writes ``blob/NNNNN.bin``: ``files`` files of ``file_kb`` KiB of pseudo-random
(incompressible) bytes. Version 0 is the base tree; each later version rewrites
``change_pct`` percent of the files (a different slice each time), so two
consecutive versions differ by exactly that many files and every build of one
version is byte for byte the same. Standard library only.
"""

import json
import os
import random
import sys


def changed_files(version, files, change_pct):
    """Indices of the files that version ``version`` (>= 1) rewrites."""
    per_version = max(1, round(files * change_pct / 100.0))
    start = (version - 1) * per_version
    return {(start + j) % files for j in range(per_version)}


def generations(version, files, change_pct):
    """How many times each file has been rewritten by versions 1..version."""
    gens = [0] * files
    for v in range(1, version + 1):
        for index in changed_files(v, files, change_pct):
            gens[index] += 1
    return gens


def file_bytes(index, generation, size):
    return random.Random("{}:{}".format(index, generation)).randbytes(size)


def write_tree(dest, files, file_kb, version, change_pct=1):
    blob = os.path.join(dest, "blob")
    os.makedirs(blob, exist_ok=True)
    size = int(file_kb) * 1024
    for index, generation in enumerate(generations(version, files, change_pct)):
        with open(os.path.join(blob, "{:05d}.bin".format(index)), "wb") as fh:
            fh.write(file_bytes(index, generation, size))
    return files * size


def main(argv):
    spec_path = argv[1] if len(argv) > 1 else "bench.json"
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    total = write_tree(os.path.dirname(os.path.abspath(spec_path)), spec["files"], spec["file_kb"],
                       spec["version"], spec.get("change_pct", 1))
    print("generated {} files, {} bytes, version {}".format(spec["files"], total, spec["version"]))


if __name__ == "__main__":
    main(sys.argv)
