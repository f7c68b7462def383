"""The engine end to end once: init, push, live, releases."""




def test_push_deploys_wsgi_app_in_editable_mode(corpus):
    paths = corpus.init("app")
    src = corpus.source("wsgi-app")
    proc = corpus.push(src, "app")
    assert proc.returncode == 0, proc.stderr
    assert "app is live" in proc.stderr
    status, body = corpus.get("app")
    assert status == 200 and '"version": "1"' in body
    assert corpus.history("app")[-1]["status"] == "success"
    assert open(paths["data"] + "/db.json").read().startswith('{"schema": 2')
