"""No request is dropped while a project deploys and rolls back, under load.

A bounded request loop (new connections and keep-alive ones) runs against the app's
public port through 20 back-to-back pushes and 5 rollbacks of examples/wsgi-app in
cooking mode: every request must get an HTTP 2xx answer, and the versions served must
move from the first to the last.
"""

from support.load import LoadLoop

DEPLOYS = 20
ROLLBACKS = 5


def test_deploys_and_rollbacks_drop_no_request(corpus):
    corpus.init("zdt", env="staging", keep_releases=10)
    src = corpus.source("wsgi-app", name="zdt")
    first = corpus.push(src, "zdt")
    assert first.returncode == 0, first.stderr
    url = "http://127.0.0.1:{}/".format(corpus.port("zdt"))
    load = LoadLoop(url, clients=2).start()
    try:
        for n in range(2, DEPLOYS + 2):
            corpus.commit(src, {"VERSION": "{}\n".format(n)}, message="v{}".format(n))
            proc = corpus.push(src, "zdt")
            assert proc.returncode == 0, proc.stderr
        for _ in range(ROLLBACKS):
            result = corpus.salt("mc_project.rollback", "zdt")
            assert result.returncode == 0, result.stderr
    finally:
        seen = load.stop()
    assert seen["requests"] > 200, seen
    assert seen["failed"] == 0 and seen["non_2xx"] == 0, seen["errors"]
    assert "1" in seen["versions"] and str(DEPLOYS + 1) in seen["versions"], seen
    # Only the live slot runs once the deploys are over.
    status = corpus.salt("mc_project.status", "zdt").local
    assert status["app"] == "RUNNING"
