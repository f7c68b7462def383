"""A real browser for the web page's tests: Debian's chromium driven by Playwright.

``chromium`` is one browser per test module. ``open_page(name)`` gives a fresh
browser context (its own cookies) at 1280 px, or 375 px with ``phone=True``, whose
page records every console error, page error and failed request: ``watched.check()``
fails the test with them. ``watched.shot(name)`` saves a full-page screenshot under
the test's own temporary directory. ``log_in`` logs in through the login form.

The subdirectories reuse the fixtures of the API's tests (``pages/``: slapd, a
salt-master, corpus-api) and of the controller's (``flow/``: a linked LXC node).
"""

import os

import pytest

from support import needs

CHROMIUM = "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def _missing(why):
    if needs.strict() and os.geteuid() == 0:
        pytest.fail("{}, although scripts/install-deps ran as root (CORPUS_TESTS_STRICT=1)".format(why),
                    pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="module")
def chromium():
    """One browser per test module (its driver's event loop lives no longer than the module)."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing("needs chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("needs playwright (pip install '.[test]')")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page and what went wrong on it."""

    def __init__(self, context, page, shots):
        self.context = context
        self.page = page
        self.shots = shots
        self.problems = []
        self.refusals = set()  # statuses a test asks for on purpose (a 404 page)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append("page error: {}".format(exc)))
        page.on("requestfailed", self._failed)
        page.on("response", self._answered)

    def expect_refusal(self, status):
        """The next pages may answer ``status`` (a refusal the test checks)."""
        self.refusals.add(status)

    def _console(self, message):
        if message.type != "error":
            return
        if any("status of {}".format(status) in message.text for status in self.refusals):
            return
        self.problems.append("console error: {}".format(message.text))

    def _failed(self, request):
        # An event stream is aborted by the browser when the page it belongs to is left.
        if request.resource_type == "eventsource" and "ERR_ABORTED" in (request.failure or ""):
            return
        self.problems.append("request failed: {} {} ({})".format(request.method, request.url, request.failure))

    def _answered(self, response):
        if response.status >= 400 and response.status not in self.refusals:
            self.problems.append("{} answered {}".format(response.url, response.status))

    def shot(self, name):
        path = os.path.join(self.shots, name + ".png")
        self.page.screenshot(path=path, full_page=True)
        assert os.path.getsize(path) > 0
        return path

    def check(self):
        assert self.problems == [], self.problems


@pytest.fixture
def open_page(chromium, tmp_path):
    """``open_page(phone=False)``: a watched page in a browser context of its own."""
    opened = []
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def make(phone=False):
        context = chromium.new_context(viewport=PHONE if phone else DESKTOP, is_mobile=phone,
                                       has_touch=phone)
        context.set_default_timeout(30000)
        watched = Watched(context, context.new_page(), str(shots))
        opened.append(watched)
        return watched

    yield make
    for watched in opened:
        watched.context.close()


def _log_in(watched, base, user, password):
    page = watched.page
    page.goto(base + "/web/")
    assert page.url.startswith(base + "/web/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/web/")
    return page


@pytest.fixture
def log_in():
    """``log_in(watched, base_url, user, password)``: through the login form, as a user does;
    the page lands on the fleet."""
    return _log_in
