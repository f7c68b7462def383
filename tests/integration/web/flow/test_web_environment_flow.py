"""The web page driving a real environment end to end, in a real browser (Debian's
chromium driven by Playwright) against the real API over a real controller and LXC
node: create an environment from the fleet page and watch its job's steps turn done
without reloading, push examples/wsgi-app and see its progress stream in and the
release appear, roll back from the page (confirmed) and watch the rollback job's step
turn done live and the live release change, see another tenant refused, and
destroy it with its typed name. One environment is shared by the module's tests, in
order. Every page is saved as a screenshot and has no console error and no failed
request."""

import os
import shutil
import threading

import pytest
import requests
import salt.config

from mc_project.api import users
from mc_project.api.app import create_app
from support.api_stub import run_corpus
from support.api_server import served
from support.corpus import EXAMPLES
from support.git import git
from support.wait import wait_for

ENV = "webflow"
DEPLOYER = ("webdev", "webdev-password")
OUTSIDER = ("outsider", "outsider-password")
JOB_TIMEOUT = 900 * 1000  # ms: making a container (the golden image may be built first)


@pytest.fixture(scope="module")
def api(controller, node1):
    opts = salt.config.master_config(controller.config_file)
    app = create_app(opts)  # puts node1 in tenant default
    users.add_local_user(app.state.url, DEPLOYER[0], DEPLOYER[1], "default", "deployer")
    users.add_local_user(app.state.url, OUTSIDER[0], OUTSIDER[1], "elsewhere", "deployer")
    with served(app) as url:
        yield url


@pytest.fixture(scope="module")
def home(api, tmp_path_factory):
    """A developer's laptop logged in with the corpus command (to push)."""
    home = tmp_path_factory.mktemp("laptop")
    login = run_corpus(["--url", api, "login", "--user", DEPLOYER[0], "--password-stdin"], home,
                       stdin=DEPLOYER[1] + "\n")
    assert login.returncode == 0, login.stderr
    yield home
    # node1 has two slots: a test that stopped half-way must not keep one from the next modules.
    if run_corpus(["status", ENV], home).returncode == 0:
        run_corpus(["destroy", ENV, "--yes"], home, timeout=900)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    src = tmp_path_factory.mktemp("src") / ENV
    shutil.copytree(os.path.join(EXAMPLES, "wsgi-app"), src)
    git(str(src), "init", "-q", "-b", "main")
    git(str(src), "add", "-A")
    git(str(src), "commit", "-qm", "first")
    return src


def served_version(node):
    try:
        answer = requests.get("http://{}:{}/".format(node["address"], node["http_port"]),
                              headers={"Host": "{}.corpus.test".format(ENV)}, timeout=5)
    except requests.RequestException:
        return None
    return answer.json()["version"] if answer.status_code == 200 else None


def open_environment(page, api):
    page.goto("{}/web/environments/{}".format(api, ENV))
    page.wait_for_selector("#project-{} h4".format(ENV), timeout=120000)  # the panel answered


def test_create_an_environment_and_watch_its_steps_turn_done(open_page, log_in, api, home):
    watched = open_page()
    page = log_in(watched, api, *DEPLOYER)
    create = page.locator("form[action='/web/environments']")
    create.locator("input[name=name]").fill(ENV)
    create.locator("select[name=type]").select_option("staging")
    create.locator("select[name=host]").select_option("node1")
    create.locator("button[type=submit]").click()
    page.wait_for_url("{}/web/jobs/*".format(api))
    assert "Creating environment {}".format(ENV) in page.inner_text(".flash")
    page.evaluate("window.notReloaded = true")
    done_at_first = page.locator(".step.ok").count()
    total = page.locator("ol.steps li").count()
    assert total > 1
    page.wait_for_function("n => document.querySelectorAll('.step.ok').length > n", arg=done_at_first,
                           timeout=JOB_TIMEOUT)
    watched.shot("create-running")
    page.wait_for_selector("#job-status.ok", timeout=JOB_TIMEOUT)
    assert page.locator(".step.ok").count() == total and page.evaluate("window.notReloaded") is True
    watched.shot("create-done")
    page.click("#job-summary a[href='/web/environments/{}']".format(ENV))
    assert "ssh -p" in page.inner_text("#ssh-command")
    watched.shot("environment-new")
    watched.check()


def test_a_push_streams_its_progress_and_its_release_appears(open_page, log_in, api, home, checkout, node1):
    watched = open_page()
    page = log_in(watched, api, *DEPLOYER)
    open_environment(page, api)
    page.click("#project-{} .deploy-watch summary".format(ENV))
    page.wait_for_selector(".deploy-log .muted")
    pushed = {}
    pusher = threading.Thread(target=lambda: pushed.update(result=run_corpus(["push", ENV], home, cwd=checkout,
                                                                             timeout=900)))
    pusher.start()
    try:
        page.wait_for_selector(".deploy-log .line", timeout=300000)  # a line while the deploy runs
        watched.shot("deploy-streaming")
    finally:
        pusher.join()
    assert pushed["result"].returncode == 0, pushed["result"].stderr
    page.wait_for_function("document.querySelector('.deploy-end').textContent.includes('success')",
                           timeout=60000)
    assert "deploy" in page.inner_text(".deploy-log")
    assert wait_for(lambda: served_version(node1) == "1", timeout=60, what="version 1 served")
    open_environment(page, api)
    assert page.locator("#project-{} .releases tr.live".format(ENV)).count() == 1
    watched.shot("environment-deployed")
    watched.check()


def test_rollback_from_the_page(open_page, log_in, api, home, checkout, node1):
    (checkout / "VERSION").write_text("2\n")
    git(str(checkout), "commit", "-qam", "second")
    pushed = run_corpus(["push", ENV], home, cwd=checkout, timeout=900)
    assert pushed.returncode == 0, pushed.stderr
    assert wait_for(lambda: served_version(node1) == "2", timeout=60, what="version 2 served")
    watched = open_page()
    page = log_in(watched, api, *DEPLOYER)
    open_environment(page, api)
    rows = page.locator("#project-{} .releases tbody tr".format(ENV))
    assert rows.count() >= 2
    older = page.locator("#project-{} .releases tbody tr:not(.live)".format(ENV)).first
    release = older.locator("code").first.inner_text()
    older.locator("button:has-text('Roll back to this')").click()
    page.wait_for_selector("text=Roll back {}/{}?".format(ENV, ENV))
    watched.shot("rollback-confirm")
    page.click("button:has-text('Roll back')", no_wait_after=True)
    page.wait_for_url("{}/web/jobs/*".format(api), timeout=120000)  # the release is checked first
    assert "Rolling {}/{} back to {}".format(ENV, ENV, release) in page.inner_text(".flash")
    page.evaluate("window.notReloaded = true")
    step = page.locator("ol.steps li .step").first
    assert page.locator("ol.steps li").count() == 1 and "project:rollback" in step.inner_text()
    # The step turns done without a reload (whether it is still running when the page
    # shows depends on the machine's load: the page of a new environment shows that).
    watched.shot("rollback-running")
    page.wait_for_selector("#job-status.ok", timeout=JOB_TIMEOUT)
    assert step.get_attribute("data-status") == "success" and page.evaluate("window.notReloaded") is True
    watched.shot("rollback-done")
    assert wait_for(lambda: served_version(node1) == "1", timeout=60, what="version 1 served again")
    page.click("#job-summary a[href='/web/environments/{}']".format(ENV))
    page.wait_for_selector("#project-{} h4".format(ENV), timeout=120000)
    live = page.inner_text("#project-{} .releases tr.live".format(ENV))
    assert release in live
    watched.shot("rolled-back")
    watched.check()


def test_another_tenants_user_is_refused(open_page, log_in, api):
    watched = open_page()
    page = log_in(watched, api, *OUTSIDER)
    assert ENV not in page.inner_text("main")
    watched.expect_refusal(404)
    answer = page.goto("{}/web/environments/{}".format(api, ENV))
    assert answer.status == 404 and "No environment named {}.".format(ENV) in page.inner_text("main")
    watched.shot("outsider-refused")
    watched.check()


def test_destroy_needs_the_typed_name(open_page, log_in, api, node1):
    watched = open_page()
    page = log_in(watched, api, *DEPLOYER)
    open_environment(page, api)
    page.fill("input[name=confirm_name]", ENV)
    page.click("button.danger:has-text('Destroy')")
    page.wait_for_url("{}/web/jobs/*".format(api))
    page.wait_for_selector("#job-status.ok", timeout=JOB_TIMEOUT)
    watched.shot("destroyed")
    page.goto(api + "/web/")
    assert "/web/environments/{}".format(ENV) not in page.content()
    watched.check()
