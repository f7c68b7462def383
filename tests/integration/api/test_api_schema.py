"""schemathesis over the API's own OpenAPI document, against the running corpus-api:
for every route, with a token and without, no 5xx, no traceback, the one error shape."""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from conftest import USERS

EXAMPLES = 25
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                    database=None, phases=[Phase.explicit, Phase.generate], derandomize=True)


@pytest.fixture(scope="module")
def operations(api):
    schema = schemathesis.openapi.from_url(api + "/v1/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 20
    return found


CALLS = []


def check(response, authenticated):
    CALLS.append(response.status_code)
    where = "{} {}".format(response.request.method, response.request.url)
    assert response.status_code < 500, "{}: {} {}".format(where, response.status_code, response.text[:300])
    assert "Traceback" not in response.text, where
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and body["error"]["status"] == response.status_code, where
    if not authenticated and "/health" not in where and "/login" not in where and "openapi" not in where:
        assert response.status_code in (401, 404, 405, 422), "{}: {}".format(where, response.status_code)


def fuzz(operation, headers):
    @SETTINGS
    @given(case=operation.as_strategy())
    def run(case):
        if case.query and "index" in case.query:
            # A blocking read (/v1/kv) waits as long as its wait, 5 minutes unless given.
            case.query["wait"] = "1ms"
        check(case.call(headers=headers, timeout=30), bool(headers))

    run()


def test_no_5xx_without_a_token(operations):
    CALLS.clear()
    for operation in operations:
        fuzz(operation, {})
    assert len(CALLS) >= 3 * len(operations)


# Linking a node opens an SSH connection to the host it is given: fuzzed hosts are not
# for a test machine to dial (tests/unit/test_api_admin.py covers that route's answers).
REACHES_OUT = {("POST", "/v1/nodes")}


def test_no_5xx_with_a_token(operations, http):
    CALLS.clear()
    for operation in operations:
        if (operation.method.upper(), operation.path) in REACHES_OUT:
            continue
        # A token per route: a fuzzed logout or token deletion revokes only its own.
        token = http.post("/v1/login", json={"username": "bob", "password": USERS["bob"]}).json()["token"]
        fuzz(operation, {"Authorization": "Bearer " + token})
    assert any(status < 400 for status in CALLS)
