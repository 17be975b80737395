"""Assemble the gateway: ``/auth/*``, health, the proxy and the static SPA, around one session engine.

Build one for tests with a config from :func:`frontdesk.gateway.config.load_config` (secrets passed via ``env``)::

    config = load_config(Path("test.toml"), env={"FRONTDESK_ACCESS_SECRET": "a" * 32, ...})
    app = create_app(config)            # an ASGI app; run it with uvicorn (lifespan "on")

The store and user directory open on lifespan start-up and close on shutdown. When the server starts to stop
(SIGTERM), :meth:`Gateway.begin_shutdown` runs first, through a hook the gateway leaves in the lifespan state
for the server (see ``serving``): ``/readyz`` turns 503, event streams end cleanly and WebSockets close with
1001, while other requests in flight finish (up to ``[server] shutdown_timeout``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from frontdesk.middleware.asgi_io import ASGIApp, Receive, Scope, Send, answer_endpoint, send_response
from frontdesk.middleware.audit import AuditTrail
from frontdesk.middleware.auth_api import AuthAPI
from frontdesk.middleware.clock import Clock, system_clock
from frontdesk.middleware.event_log import EventLog
from frontdesk.middleware.events import NO_EVENTS, Events
from frontdesk.middleware.http import error_body
from frontdesk.middleware.idp_tokens import TokenSealer
from frontdesk.middleware.purge import Purger
from frontdesk.middleware.sessions import Authenticator, SessionEngine
from frontdesk.middleware.store import Store
from frontdesk.middleware.tokens import KeyRing

from .backends import store_for, users_for
from .config import GatewayConfig
from .edge import GatewayEdge
from .hash_pool import HashPool
from .health import Health
from .idp_sessions import IdpSessions, IdpTokenSource
from .keys import JWKS_PATH, JwksEndpoint, access_keyring, watch_keys
from .metrics import Instrumentation
from .oidc_login import OidcLogin, build_oidc_login
from .proxy.app import ProxyApp
from .proxy.contracts import NO_METER
from .proxy.fast import FastPath
from .proxy.wiring import build_proxy
from .request_ids import RequestIds, current_request_id
from .security_headers import SecurityHeaders
from .serving import BEGIN_SHUTDOWN
from .static_files import ClientSettings, SecureStaticFiles
from .users import UserDirectory

__all__ = ["Gateway", "create_app", "build_engine"]

log = logging.getLogger("frontdesk.gateway")
METRICS_PATH = "/metrics"  # where scrapers look: served on [metrics] address, never on the gateway's port
_INTERNAL_PATHS = ("/healthz", "/readyz", JWKS_PATH)  # the gateway's own answers, one metrics label for all


def build_engine(
    config: GatewayConfig,
    *,
    store: Store,
    authenticator: Authenticator,
    clock: Clock = system_clock,
    events: Events = NO_EVENTS,
) -> SessionEngine:
    t = config.tokens
    return SessionEngine.from_keys(
        # the shared secret, or the [keys] directory
        access_keyring=access_keyring(config.keys, t.access_secret, t.access_previous, clock=clock),
        refresh_keyring=KeyRing.from_secrets(t.refresh_secret, t.refresh_previous),
        store=store,
        authenticator=authenticator,
        issuer=t.issuer,
        audience=t.audience,
        leeway=t.leeway,
        cookie=config.cookie,
        settings=config.sessions,
        clock=clock,
        events=events,
    )


@dataclass
class Gateway:
    """The gateway's ASGI app. Pure ASGI: per-request state lives in the call, never on ``self``."""

    config: GatewayConfig
    engine: SessionEngine
    users: UserDirectory | None
    auth: AuthAPI
    app: ASGIApp  # everything that is not /auth/*, /healthz, /readyz or the JWKS: the proxy, then the SPA
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    audit: AuditTrail | None = None  # the audit sink on engine.events, written in the background
    metering: Instrumentation | None = None  # None when [metrics] address is empty
    on_stopping: list[Callable[[], None]] = field(default_factory=list)  # run by begin_shutdown
    oidc: OidcLogin | None = None  # /auth/oidc/*: sign in at an OpenID Provider; None without [[oidc]]
    proxy: ProxyApp | None = None  # the proxy inside ``app``, for the fast path
    fast_path: FastPath | None = field(init=False)  # read by ``frontdesk serve``'s protocol (serving.FastHttp)
    jwks: JwksEndpoint = field(init=False)
    health: Health = field(init=False)
    purger: Purger = field(init=False)
    _entry: GatewayEdge = field(init=False, repr=False)  # the edge layer around _dispatch

    def __post_init__(self) -> None:
        self.jwks = JwksEndpoint(self.engine.access_codec.keyring)
        self.health = Health(self.engine.store, self.engine.access_codec.keyring, self.users)
        also = [self.audit] if self.audit is not None else []  # audit rows past [audit] retention
        self.purger = Purger(self.engine, self.config.purge_interval, self.engine.clock, also=also)
        # Every request and every answer passes through one layer (see edge.py): the request id, the security
        # headers and, with metrics on, the request counts, all in one send wrapper.
        meter = None
        if self.metering is not None:
            meter = self.metering.requests(is_auth=self.auth.handles, internal=_INTERNAL_PATHS)
        self._entry = GatewayEdge(
            self._dispatch,
            ids=RequestIds(trusted=self.config.trusted_proxies),
            security=SecurityHeaders(hsts_max_age=self.config.hsts_max_age),
            meter=meter,
        )
        self._hide_metrics_path = not any(route.matches(METRICS_PATH) for route in self.config.routes)
        # The proxied requests the protocol may answer itself: through the same edge, never a path of ours.
        self.fast_path = None
        if self.proxy is not None and self.config.fast_path:
            self.fast_path = FastPath(self.proxy, edge=self._entry, owns=self._answers_itself)
        if self.metering is not None:
            sampler = self.metering.sampler(self.engine)
            self.on_startup.append(sampler.start)
            self.on_shutdown.insert(0, sampler.stop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if "state" in scope:  # where the server finds the hook to call when it starts to stop
                scope["state"][BEGIN_SHUTDOWN] = self.begin_shutdown
            await self._lifespan(receive, send)
            return
        await self._entry(scope, receive, send)

    def _answers_itself(self, path: str) -> bool:
        """Whether ``path`` is the gateway's own (``_dispatch`` answers it), whatever the proxy's routes say."""
        return (
            self.auth.answers(path)
            or self.health.handles(path)
            or path == JWKS_PATH
            or (path == METRICS_PATH and self._hide_metrics_path)
        )

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if self.oidc is not None and self.oidc.answers(path):  # before /auth/*, which it lies under
                await answer_endpoint(self.oidc, scope, receive, send)
                return
            if self.auth.answers(path):  # the admission pipeline's endpoint path, as session mode's /auth/*
                await answer_endpoint(self.auth, scope, receive, send)
                return
            if self.health.handles(path):  # before the routes: never proxied, whatever their prefixes
                await self.health(scope, send)
                return
            if path == JWKS_PATH:
                await send_response(send, self.jwks.response(self.engine.clock()))
                return
            if path == METRICS_PATH and self._hide_metrics_path:
                # The metrics live on their own address only; here the SPA would answer 200 with its shell.
                await send_response(send, error_body(404, "not_found", "no such file"))
                return
        await self.app(scope, receive, send)

    async def startup(self) -> None:
        await self.engine.store.open()
        if self.users is not None:
            await self.users.open()
        for hook in self.on_startup:
            await hook()
        if self.audit is not None:
            self.audit.start()
        self.purger.start()

    def begin_shutdown(self) -> None:
        """The server has started to stop (and no longer accepts connections): say so on ``/readyz`` and end
        what would otherwise hold the stop until its timeout. Idempotent; the lifespan shutdown comes later."""
        if self.health.shutting_down:
            return
        log.info("shutting down: ending event streams and WebSockets, letting requests in flight finish")
        self.health.shutting_down = True
        for hook in self.on_stopping:
            hook()

    async def shutdown(self) -> None:
        await self.purger.stop()
        for hook in self.on_shutdown:
            await hook()
        if self.audit is not None:
            await self.audit.stop()  # writes what is still queued, before the store closes
        if self.users is not None:
            await self.users.close()
        await self.engine.store.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    config: GatewayConfig, *, authenticator: Authenticator | None = None, clock: Clock = system_clock
) -> Gateway:
    """The gateway for ``config``; ``authenticator`` replaces the built-in users table when given."""
    capacity = config.login_capacity
    hash_pool = HashPool(capacity.hash_workers, capacity.hash_queue)
    users = None if authenticator is not None else users_for(config, hash_pool=hash_pool)
    metering = Instrumentation(config.routes) if config.metrics.enabled else None
    store = store_for(config)
    if metering is not None:
        store = metering.store(store)
    # This gateway's listeners: the DEBUG log, the metrics, the audit trail (below).
    events = Events([EventLog()] + ([metering.events] if metering is not None else []))
    authenticate = authenticator or users or _refuse
    engine = build_engine(config, store=store, authenticator=authenticate, clock=clock, events=events)
    audit = AuditTrail(store, retention=config.audit.retention, clock=clock)
    events.add(audit)
    oidc = build_oidc_login(config, engine, clock=clock)
    idp = _idp_sessions(config, engine, oidc, clock)
    auth = AuthAPI(
        engine,
        csrf_header=config.csrf_header,
        trusted=config.trusted_proxies,
        origins=config.origins,
        max_concurrent_logins_per_address=capacity.max_concurrent_per_address,
        forward_auth_pass_token=config.forward_auth_pass_token,
        password_login=config.password_login,
        sign_in_with={name: f"{oidc.prefix}/{name}/login" for name in oidc.parties} if oidc else None,
        session_claims=idp.claims if idp else None,
        on_logout=idp.logged_out if idp else None,
        on_logout_everywhere=idp.others_logged_out if idp else None,
    )
    # The SPA learns the header and prefix from the very AuthAPI that enforces them.
    client = ClientSettings(auth_prefix=auth.prefix, csrf_header=auth.csrf_header)
    meter = metering.proxy if metering is not None else NO_METER
    static = SecureStaticFiles(config.static_dir, client=client)
    # The proxy writes each request's id upstream (the edge layer assigned it; see request_ids).
    tokens = IdpTokenSource(engine, idp) if idp else engine  # token = "idp" routes get the provider's token
    proxy = build_proxy(config, tokens, fallback=static, meter=meter, request_id=current_request_id)
    # `frontdesk keys rotate` takes effect without a restart: the key directory is reloaded while running.
    start_key_watch, stop_key_watch = watch_keys(engine.access_codec.keyring, config.keys.reload_interval)
    return Gateway(
        config=config,
        engine=engine,
        users=users,
        auth=auth,
        app=proxy,
        # Cached session rows are trusted until invalidated (announcements, the revocation epoch): invalidation.py.
        on_startup=[start_key_watch, engine.follow_invalidations],
        # The revocations a logout left running end before the providers' HTTP clients close.
        on_shutdown=[engine.stop_following, proxy.aclose, stop_key_watch]
        + ([idp.aclose] if idp else [])
        + ([oidc.aclose] if oidc else []),
        audit=audit,
        metering=metering,
        on_stopping=[proxy.shut_down],
        oidc=oidc,
        proxy=proxy,
    )


def _idp_sessions(
    config: GatewayConfig, engine: SessionEngine, oidc: OidcLogin | None, clock: Clock
) -> IdpSessions | None:
    """The providers' tokens kept with the sessions they start (and their back-channel logout), when any."""
    if oidc is None:
        return None
    claims = {provider.name: provider.session_claims for provider in config.oidc}
    sealer = TokenSealer(config.oidc_token_keys)
    idp = IdpSessions(engine, oidc.parties, sealer, session_claims=claims, clock=clock)
    oidc.on_session_started = idp.session_started
    oidc.actions.update({"backchannel": ("POST", idp.backchannel), "end-session": ("GET", idp.end_session)})
    return idp


async def _refuse(username: str, password: str) -> None:
    return None
