"""What the REST API's tests check of every answer."""


def error(answer, status):
    """``answer`` is the one error shape with ``status``: one sentence, no traceback; returns it."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    message = body["error"]["message"]
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    return message


def login(client, user, password=None):
    """The bearer header of ``user`` (password ``<user>-pw`` unless given) logged in through ``client``."""
    answer = client.post("/v1/login", json={"username": user, "password": password or user + "-pw"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": "Bearer " + answer.json()["token"]}


def ok(answer, status=200):
    """``answer`` has ``status``; its JSON (None when it has no body)."""
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None
