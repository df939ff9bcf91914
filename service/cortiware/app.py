"""The ASGI application: `cortiware.app:app` (or the factory `serve_app`) for servers,
`create_app(settings)` for tests."""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from sqlalchemy.ext.asyncio import async_sessionmaker

from cortiware import __version__
from cortiware.api_reference import SwaggerReader, reader_assets
from cortiware.app_state import SETTINGS
from cortiware.audit.routes import AuditController
from cortiware.auth import provide_optional_principal, provide_principal
from cortiware.auth.wiring import auth_middleware, auth_route_handlers
from cortiware.billing.routes import BillingController
from cortiware.db.engine import create_engine
from cortiware.db.outage import OUTAGE_HANDLERS
from cortiware.db.replica import READ_SESSIONS, ReadSessions, provide_read_session
from cortiware.db.session import DB_ENGINE, DB_SESSIONMAKER, provide_db_session
from cortiware.errors import exception_handlers
from cortiware.health import PROBES
from cortiware.logging import access_log, configure_logging
from cortiware.metrics_publisher import metrics_lifespan
from cortiware.middleware.http_methods import allow_head_on_405, serve_every_method
from cortiware.middleware.input_guard import InputGuardMiddleware
from cortiware.middleware.pipeline import RequestPipeline
from cortiware.middleware.request_context import RequestContextMiddleware
from cortiware.middleware.response_headers import api_response_headers
from cortiware.middleware.strict_input import refuse_loose_input
from cortiware.monetization import route_handlers as monetization
from cortiware.onboarding import route_handlers as onboarding
from cortiware.openapi import describe_http_contract
from cortiware.organizations import route_handlers as organizations
from cortiware.pages import page_route_handlers, template_config
from cortiware.pages.error_pages import html_outside_api
from cortiware.portals import route_handlers as portals
from cortiware.route_policy import share_with_preflights
from cortiware.settings import Settings
from cortiware.webhooks.routes import federation_webhook, stripe_webhook
from cortiware.wiring import redis_lifespan, redis_middleware

__all__ = ["create_app"]

MAX_BODY_BYTES = 1024 * 1024  # contract: a body over 1 MiB is 413
log = structlog.get_logger("cortiware.app")


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the application; settings default to the validated environment."""
    settings = settings or Settings.from_env()
    configure_logging()
    _init_sentry(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        engine = create_engine(settings.database_url)
        DB_ENGINE.set(app, engine)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        DB_SESSIONMAKER.set(app, sessionmaker)
        # Reports, exports and audit listings: the read replica when configured.
        replica = (
            None
            if settings.database_replica_url is None
            else create_engine(settings.database_replica_url, pool_size=5, watch_outages=False)
        )
        READ_SESSIONS.set(app, ReadSessions(sessionmaker, replica))
        # Redis (pool, breaker, limiter, idempotency, cache) is set up by `redis_lifespan`.
        redis = settings.redis_url
        log.info(
            "startup",
            app_env=settings.app_env.value,
            database="embedded SQLite file" if settings.is_embedded_database else "PostgreSQL",
            stores="Redis" if redis is not None else "in-memory (no REDIS_URL)",
        )
        try:
            yield
        finally:
            access_log.flush()  # the lines still buffered (at most FLUSH_AFTER old)
            await engine.dispose()
            if replica is not None:
                await replica.dispose()

    route_handlers: list[Any] = auth_route_handlers(settings)
    # Server-rendered pages (/login, /provider, /owner, /onboarding) and /static.
    route_handlers += page_route_handlers()
    # The API reference reader's own files (no CDN).
    route_handlers.append(reader_assets())
    route_handlers += business_route_handlers()
    # Stripe billing and the signed webhooks (whose routes declare their exemptions).
    route_handlers += [BillingController, stripe_webhook, federation_webhook]
    # Sessions and CSRF come before rate limiting and idempotency, which read the principal
    # id the session middleware puts into the scope.
    # One Litestar middleware running them in this order (`RequestPipeline`: the cost).
    pipeline = RequestPipeline(
        InputGuardMiddleware(), *auth_middleware(settings), *redis_middleware(settings)
    )
    lifespans: list[Any] = [
        lifespan,
        partial(redis_lifespan, settings=settings),
        partial(metrics_lifespan, settings=settings),
    ]

    app = Litestar(
        route_handlers=[*PROBES, *route_handlers],
        # Every route, however registered, runs the pipeline (a stage with nothing to do on
        # a route is left out of its chain: on the health probes, all of them, `PROBE`).
        middleware=[pipeline],
        lifespan=lifespans,
        dependencies={
            "db_session": Provide(provide_db_session),
            "read_session": Provide(provide_read_session),
            "principal": Provide(provide_principal),
            "maybe_principal": Provide(provide_optional_principal),
        },
        # problem+json under /api/, an HTML error page everywhere else (pages, unknown paths);
        # an unreachable database is a 503 with Retry-After, logged once per outage.
        exception_handlers=html_outside_api({**exception_handlers, **OUTAGE_HANDLERS}),
        # A JSON body or query value only lenient conversion accepts ("5" for an integer) is
        # a 400. The only `before_request` hook: a layer setting its own would replace it.
        before_request=refuse_loose_input,
        template_config=template_config(),
        request_max_body_size=MAX_BODY_BYTES,
        state=State({SETTINGS.name: settings}),
        openapi_config=OpenAPIConfig(
            title="Cortiware API",
            version=__version__,
            path="/api/docs",
            use_handler_docstrings=True,  # each handler's docstring is its description
            render_plugins=[SwaggerReader()],  # its files are served by reader_assets()
        ),
        logging_config=None,  # configure_logging() owns the root logger (JSON lines)
        debug=False,
    )
    share_with_preflights(app.routes)
    # HEAD on every GET route (as GET, without a body), a complete Allow on OPTIONS.
    serve_every_method(app)
    handler = app.asgi_handler
    if settings.sentry_dsn:
        from sentry_sdk.integrations.asgi import SentryAsgiMiddleware  # noqa: PLC0415

        # Sentry's request transactions (SENTRY_TRACES_SAMPLE_RATE), just inside the request
        # context: its isolation scope forks the one RequestContextMiddleware made, so error
        # events and transactions alike carry the user processor. Named by URL only until
        # the route is known (`name_sentry_transaction` then names them by its template).
        handler = SentryAsgiMiddleware(
            handler, transaction_style="url", mechanism_type="asgi", asgi_version=3
        )
    # Outermost, around routing, so the router's own 404 and 405 answers are timed, logged
    # and labelled too: the request id, the access line, the metrics; nosniff and no-store
    # on every /api/ answer; HEAD in the Allow of the router's 405s.
    app.asgi_handler = RequestContextMiddleware(
        settings.access_log_sample_rate, (api_response_headers, allow_head_on_405)
    ).around(handler)
    # What middleware and guards answer (problem+json errors, headers), which Litestar
    # cannot see from the handlers: added to the document served and committed.
    describe_http_contract(app)
    return app


def serve_app() -> Litestar:
    """The app as a server runs it (`cortiware serve`, `cortiware.app:app`): `create_app()`,
    with the heap built at start-up frozen out of the garbage collector once it has started.

    Without that, each full collection walks the whole start-up heap (about 200,000 objects:
    SQLAlchemy, Litestar, the OpenAPI document): about 100 ms with the event loop stopped,
    five times in 8 s of `GET /api/plans` at 32 connections, which set the p99 latency
    (97 ms; frozen: 2 ms a collection, p99 7.5 ms; docs/benchmarks.md). Tests build many apps
    in one process and keep using `create_app`, whose garbage stays collectable.
    """
    app = create_app()
    app.on_startup.append(_freeze_startup_heap)
    return app


def _freeze_startup_heap() -> None:
    # Collect the start-up garbage first, so that only what lives on is frozen (the
    # standard library's advice for `gc.freeze`).
    gc.collect()
    gc.freeze()


def business_route_handlers() -> list[Any]:
    """Handlers of onboarding, monetization, organizations, the portals and the audit log."""
    return [*onboarding, *monetization, *organizations, *portals, AuditController]


def _init_sentry(settings: Settings) -> None:
    if not settings.sentry_dsn:
        return
    # Only deployments with SENTRY_DSN use it, and importing sentry_sdk costs about a tenth
    # of the app's own import time (`python -X importtime`), so it is loaded on demand.
    import sentry_sdk  # noqa: PLC0415
    from sentry_sdk.integrations.litestar import LitestarIntegration  # noqa: PLC0415
    from sentry_sdk.integrations.logging import ignore_logger  # noqa: PLC0415

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.app_env.value,
        release=f"cortiware@{settings.app_version}",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        # No PII is the SDK's default; `send_default_pii` is deprecated (a warning) since
        # sentry-sdk 2.7x. The user context (id and role, never an e-mail) is set per request
        # by RequestContextMiddleware.
        # The auto-enabled Litestar integration parses every request's body before the
        # handler, outside Litestar's error handling: a malformed JSON body was a 500 instead
        # of the service's 400, every body was parsed twice, and bodies went into events.
        # What it gave is kept: the 500 handler (`cortiware.errors`) sends the exception and
        # `create_app` wraps the app in Sentry's generic ASGI middleware (transactions).
        disabled_integrations=[LitestarIntegration()],
    )
    # The 500 handler sends its exception itself (`capture_exception`, with the traceback);
    # its `unhandled_exception` log line would be a second event, without one (structlog
    # keeps `exc_info` in the event dict), through Sentry's logging integration.
    ignore_logger("cortiware.errors")


def __getattr__(name: str) -> Any:
    # `cortiware.app:app` is built on first access, so importing this module never reads
    # the environment (tests build their own apps with explicit settings).
    if name == "app":
        return serve_app()
    raise AttributeError(name)
