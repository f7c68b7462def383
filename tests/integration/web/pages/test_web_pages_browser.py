"""The web page in a real browser (Debian's chromium driven by Playwright) against a
real corpus-api, salt-master and slapd: logging in with the directory's account, the
fleet, an environment's access details, another tenant's environment refused, a job's
steps turning done live over Server-Sent Events fed by the master's event bus, a failed
job's failing step, the activity, and every page at phone width. Every page is saved as
a screenshot and has no console error and no failed request."""

import threading
import time

from mc_project import jobs
from mc_project.errors import CorpusError

STEP_SECONDS = 1.5


def test_login_fleet_and_logout(open_page, log_in, api, passwords):
    watched = open_page()
    page = log_in(watched, api, "alice", passwords["alice"])
    environments = page.inner_text("#environments")
    assert "a1" in environments and "a2" in environments and "b1" not in environments
    assert "node1" in page.inner_text("#nodes") and page.locator("svg.chart").count() == 1
    session = [cookie for cookie in watched.context.cookies() if cookie["name"] == "corpus_session"][0]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert "corpus_session" not in page.evaluate("document.cookie")  # no script reads the session
    watched.shot("fleet")
    page.select_option("select[name=type]", "dev")
    page.click(".filters button[type=submit]")
    page.wait_for_url(api + "/web/?tenant=&type=dev&node=")
    watched.shot("fleet-filtered")
    page.click("text=Log out")
    page.wait_for_url(api + "/web/login")
    assert "You are logged out." in page.inner_text("main")
    page.goto(api + "/web/environments/a1")
    assert page.url == api + "/web/login?next=/web/environments/a1"
    watched.shot("logged-out")
    watched.check()


def test_an_environment_gives_its_access_and_another_tenants_is_refused(open_page, log_in, api, passwords):
    watched = open_page()
    watched.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = log_in(watched, api, "alice", passwords["alice"])
    page.click("a[href='/web/environments/a1']")
    page.wait_for_url(api + "/web/environments/a1")
    assert page.inner_text("#ssh-command") == "ssh -p 40001 root@a1.corpus.test"
    assert "ssh://root@a1.corpus.test:40001/srv/projects/a1/git/project.git" in page.inner_text("#access")
    page.click("button[data-copy=ssh-command]")
    page.wait_for_function("document.querySelector('button[data-copy=ssh-command]').textContent == 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == "ssh -p 40001 root@a1.corpus.test"
    # the project's panel asks the environment's minion, which this controller does not have
    page.wait_for_selector("#project-a1 .flash.bad")
    assert "env-a1" in page.inner_text("#project-a1")
    watched.shot("environment")
    watched.expect_refusal(404)
    answer = page.goto(api + "/web/environments/b1")
    assert answer.status == 404 and "No environment named b1." in page.inner_text("main")
    watched.shot("other-tenant-refused")
    watched.check()


def quick_job(ctl, target, failing=None):
    """A job of three steps run here, announcing each on the master's bus as the
    controller's jobs do; step ``failing`` raises."""
    def step(ctx):
        time.sleep(STEP_SECONDS)
        ctx.log("did " + ctx.name)
        if ctx.name == failing:
            raise CorpusError("the disk is full")

    registry = {"test:one": (step, None), "test:two": (step, None), "test:three": (step, None)}
    manager = jobs.Jobs(ctl.url, registry=registry, fire=ctl.fire)
    return manager, manager.create("test_job", target, list(registry), {})


def test_a_jobs_steps_turn_done_live(open_page, log_in, api, passwords, ctl):
    manager, job_id = quick_job(ctl, "a1")
    watched = open_page()
    page = log_in(watched, api, "alice", passwords["alice"])
    page.goto("{}/web/jobs/{}".format(api, job_id))
    page.evaluate("window.notReloaded = true")
    assert page.inner_text("#job-status") == "pending"
    runner = threading.Thread(target=manager.run, args=(job_id,))
    runner.start()
    try:
        page.wait_for_selector("#step-1 .step.ok", timeout=30000)
        assert page.locator("#step-3 .step.ok").count() == 0  # the first step shows done before the last
        watched.shot("job-running")
        page.wait_for_selector("#job-status.ok", timeout=30000)
    finally:
        runner.join()
    assert page.inner_text("#job-status") == "success"
    assert page.locator(".step.ok").count() == 3
    assert page.evaluate("window.notReloaded") is True  # the steps changed without a reload
    assert "3 of 3 steps done" in page.inner_text("#job-summary")
    page.click("#step-2 summary")
    assert page.inner_text("#step-2 pre.log") == "did test:two"
    watched.shot("job-done")
    page.goto(api + "/web/jobs")
    assert "#{}".format(job_id) in page.inner_text("main") and page.locator("svg.chart").count() == 1
    watched.shot("jobs")
    watched.check()


def test_a_failed_job_shows_its_failing_step_and_reason(open_page, log_in, api, passwords, ctl):
    manager, job_id = quick_job(ctl, "a2", failing="test:two")
    manager.run(job_id)
    watched = open_page()
    page = log_in(watched, api, "alice", passwords["alice"])
    page.goto("{}/web/jobs/{}".format(api, job_id))
    assert page.inner_text("#job-status") == "failed"
    assert "failed at step 2/3 test:two: the disk is full" in page.inner_text("#job-error")
    failing = page.locator("#step-2 .step.failing")
    assert failing.count() == 1 and "failed: the disk is full" in page.inner_text("#step-2 pre.log")
    assert page.locator("#step-2 pre.log").is_visible()  # the failing step's log is open
    assert page.inner_text("#step-1 .badge") == "undone" and page.inner_text("#step-3 .badge") == "pending"
    watched.shot("job-failed")
    watched.check()


def test_the_activity_shows_who_did_what(open_page, log_in, api, passwords):
    watched = open_page()
    page = log_in(watched, api, "bob", passwords["bob"])
    page.goto(api + "/web/environments/b1")
    page.wait_for_selector("#project-b1 .loading", state="detached")  # the panel answered
    page.fill("input[name=confirm_name]", "not-b1")
    page.click("button.danger:has-text('Destroy')")
    page.wait_for_url(api + "/web/environments/b1")
    assert "Type the environment's name, b1, to destroy it." in page.inner_text(".flash")
    # the page loads its panel again: leaving before it answered would abort that request
    page.wait_for_selector("#project-b1 .loading", state="detached")
    page.click("nav >> text=Activity")
    page.wait_for_url(api + "/web/activity")
    feed = page.inner_text("#activity")
    assert "POST /web/environments/b1/destroy" in feed and "bob" in feed
    assert "refused (400): Type the environment's name, b1, to destroy it." in feed
    page.fill("input[name=q]", "destroy")
    page.click(".filters button[type=submit]")
    page.wait_for_url(api + "/web/activity?user=&q=destroy")
    assert "POST /web/environments/b1/destroy" in page.inner_text("#activity")
    watched.shot("activity")
    watched.check()


def test_every_page_fits_a_phone(open_page, log_in, api, passwords, ctl):
    manager, job_id = quick_job(ctl, "a1")
    manager.run(job_id)
    watched = open_page(phone=True)
    page = log_in(watched, api, "alice", passwords["alice"])
    for name, path in (("fleet", "/web/"), ("environment", "/web/environments/a1"),
                       ("job", "/web/jobs/{}".format(job_id)), ("jobs", "/web/jobs")):
        page.goto(api + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)
        watched.shot(name + "-phone")
    watched.check()
