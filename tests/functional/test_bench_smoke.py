"""`bench/run.py --quick --only abc` runs end to end: real pushes, rollbacks and releases,
small sizes.

The numbers themselves are not asserted (benchmarks are not pass/fail); only that
the run completes, prints its three sections and leaves nothing behind. (The other sections
measure what their own integration tests exercise: zero downtime, the Django app, the API,
the inventory; `make bench` runs them all.)
"""

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_quick_prints_three_sections(tmp_path):
    root = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "bench", "run.py"), "--quick", "--only", "abc", "--root", str(root)],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    for header in ("(a) push-to-live", "(b) rollback time", "(c) disk used by 10 releases"):
        assert header in proc.stdout, output
    assert "corpus / baseline (no restart):" in proc.stdout, output
    assert "on disk / (one release + bytes that differ):" in proc.stdout, output
    assert "BENCH FAILED" not in proc.stdout, output
    assert not root.exists(), "the bench root was not removed"
