"""The API's application: ``create_app(opts)`` over the master's options.

Everything lives under ``/v1`` (OpenAPI at ``/v1/openapi.json``, docs at
``/v1/docs``). ``GET /v1/health`` needs no token; every other route does.
"""

import contextlib

import anyio.to_thread
from fastapi import APIRouter, FastAPI

from mc_project import web
from mc_project.api import errors, settings, tenants
from mc_project.api.audit import AuditMiddleware
from mc_project.api.routers import (
    audit,
    chat,
    checks,
    compliance,
    detectors,
    domains,
    environments,
    handlers,
    images,
    inventory,
    inventory_exports,
    jobs,
    kv,
    nodes,
    projects,
    runs,
    silences,
    site_plans,
    sites,
    tokens,
)
from mc_project.api.routers import tenants as tenant_routes
from mc_project.chat import outgoing as chat_outgoing
from mc_project.controller import retired_reaper
from mc_project.controller.runtime import Controller
from mc_project.health import background as health_background

PREFIX = "/v1"
# Routes and event streams run in worker threads; each watcher of a job holds one for
# as long as it watches, so there are more than the default 40.
WORKER_THREADS = 200


@contextlib.asynccontextmanager
async def lifespan(app):
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    # Detectors' scheduled results and scheduled site walks, when configured.
    background = health_background.start(app.state.ctl)
    # Job progress to the tenants' chat webhooks, when the master's event bus is there.
    chat_notifier = chat_outgoing.start(app.state.ctl)
    # Redeployed environments' old containers, once kept long enough.
    reaper = retired_reaper.Reaper(app.state.ctl).start() if getattr(app.state.ctl, "settings", None) else None
    try:
        yield
    finally:
        if reaper is not None:
            reaper.stop()
        chat_outgoing.stop(chat_notifier)
        health_background.stop(background)


def create_app(opts, ctl=None):
    """The FastAPI app of the controller whose master options are ``opts``."""
    api_settings = settings.api_settings(opts)
    ctl = ctl or Controller(opts)
    tenants.ensure_default(ctl.url)
    app = FastAPI(title="corpus controller API", version="1", openapi_url=PREFIX + "/openapi.json",
                  docs_url=PREFIX + "/docs", redoc_url=None, lifespan=lifespan)
    app.state.ctl = ctl
    app.state.url = ctl.url
    app.state.settings = api_settings
    errors.install(app)
    app.add_middleware(AuditMiddleware, url_of=lambda: app.state.url)

    health = APIRouter(tags=["health"])

    @health.get("/health")
    def health_check():
        """200 while the API answers; no token needed."""
        return {"status": "ok"}

    for router in (health, tokens.router, nodes.router, environments.router, projects.router, jobs.router,
                   audit.router, tenant_routes.router, inventory.router, inventory_exports.router, domains.router,
                   runs.router, kv.router, detectors.router, sites.router, checks.router, silences.router,
                   handlers.router, chat.router, compliance.router, site_plans.router, images.router):
        app.include_router(router, prefix=PREFIX)
    web.mount(app)  # the web page (/web/), over the routes above
    return app
