"""Access policies: every route declares one, or the app refuses to start (deny by default).

    router = APIRouter(dependencies=[Depends(requires(Role.IT_ADMIN))])
    @router.get("/connexion", dependencies=[Depends(PUBLIC)])

A policy authenticates the request (session cookie or bearer token), checks the roles, and
checks the CSRF token of unsafe browser requests. Anonymous HTML requests are sent to the login
page; anonymous API requests get 401 problem details; the wrong role gets 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import HTTPException, Request, WebSocket, WebSocketException, status
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount

from naho.platform.deps import client_address, get_container
from naho.platform.i18n import N_
from naho.platform.security import csrf
from naho.platform.security import service as security
from naho.platform.security.actor import Actor
from naho.platform.security.rules import STAFF_ROLES, Role, roles_allow

SESSION_COOKIE = "naho_session"
# Refusal details, English message ids translated on the HTML error page.
AUTHENTICATION_REQUIRED = N_("Sign in to continue.")
ROLE_REFUSED = N_("Your role does not allow this.")
CSRF_REFUSED = N_("This form has expired or was not sent from naho. Reload the page and try again.")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginRequired(Exception):
    """An anonymous browser asked for a protected page: send it to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def wants_html(request: Request) -> bool:
    """A browser page rather than an API call (the API never redirects)."""
    if request.url.path.startswith(("/api/", "/fhir/")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


async def authenticate(request: HTTPConnection, *, allow_mfa_pending: bool = False) -> Actor | None:
    container = get_container(request)
    address = client_address(request)
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        return await run_in_threadpool(security.resolve_api_token, container.uow(), token, address=address)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return await run_in_threadpool(
        security.resolve_session, container.uow(), container.settings, cookie,
        allow_mfa_pending=allow_mfa_pending, address=address,
    )


async def check_csrf(request: Request) -> None:
    if request.method not in UNSAFE_METHODS:
        return
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # no ambient credential: CSRF does not apply
    token = request.headers.get(csrf.CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # cached by Starlette: the route reads it again for free
        value = form.get(csrf.CSRF_FIELD)
        token = value if isinstance(value, str) else None
    secret = get_container(request).settings.secret_key
    if not csrf.token_is_valid(secret, request.cookies.get(csrf.CSRF_COOKIE), token):
        raise HTTPException(403, detail=CSRF_REFUSED)


class Policy:
    """Who may call a route. Instances are FastAPI dependencies."""

    def __init__(self, name: str, roles: Iterable[Role] | None, *, anonymous: bool = False,
                 allow_mfa_pending: bool = False) -> None:
        self.name = name
        self.roles = frozenset(roles) if roles is not None else None
        self.anonymous = anonymous
        self.allow_mfa_pending = allow_mfa_pending

    def __repr__(self) -> str:
        return f"Policy({self.name})"

    async def __call__(self, request: Request) -> AsyncIterator[None]:
        actor = await authenticate(request, allow_mfa_pending=self.allow_mfa_pending)
        request.state.actor = actor
        try:
            if not self.anonymous and actor is None:
                # No credential at all: the answer is "authenticate" (401 or the login page), before
                # CSRF, which guards requests carrying an ambient credential.
                if wants_html(request):
                    raise LoginRequired(request.url.path)
                raise HTTPException(401, detail=AUTHENTICATION_REQUIRED, headers={"WWW-Authenticate": "Bearer"})
            await check_csrf(request)
            if not self.anonymous and actor is not None and self.roles is not None \
                    and not roles_allow(actor.roles, self.roles):
                raise HTTPException(403, detail=ROLE_REFUSED)
            yield
        finally:
            # The CSRF check may have parsed a multipart form (uploads spooled to temporary
            # files): close it once the route is done with it, whatever the route did.
            await request.close()


#: Anyone, signed in or not (login page, health check). Still CSRF-checked on POST.
PUBLIC = Policy("public", None, anonymous=True)
#: Any signed-in member of staff.
STAFF = Policy("staff", STAFF_ROLES)
#: Signed in with the password, second factor still owed.
MFA_PENDING = Policy("mfa-pending", None, allow_mfa_pending=True)


def requires(*roles: Role) -> Policy:
    return Policy("+".join(sorted(roles)), roles)


class SocketPolicy:
    """Who may open a websocket: the session cookie authenticates (no bearer: browsers only),
    the roles are checked, and the Origin must be naho's own, since a browser sends cookies with
    a cross-site websocket and no CSRF token guards it. A refusal closes the handshake (1008)."""

    anonymous = False

    def __init__(self, name: str, roles: Iterable[Role]) -> None:
        self.name = name
        self.roles: frozenset[Role] | None = frozenset(roles)

    def __repr__(self) -> str:
        return f"SocketPolicy({self.name})"

    async def __call__(self, websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        scheme = "https" if websocket.url.scheme == "wss" else "http"
        # naho's own origin: the Host asked for, or the public URL behind a proxy that rewrites it.
        public = get_container(websocket).settings.public_url.rstrip("/")
        own = {f"{scheme}://{websocket.headers.get('host', '')}"} | ({public} if public else set())
        if origin is not None and origin not in own:
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "cross-site websocket refused")
        actor = None if "authorization" in websocket.headers else await authenticate(websocket)
        if actor is None or (self.roles is not None and not roles_allow(actor.roles, self.roles)):
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "sign in first")
        websocket.state.actor = actor


def socket_requires(*roles: Role) -> SocketPolicy:
    return SocketPolicy("socket:" + "+".join(sorted(roles)), roles)


def policy_of(route: BaseRoute) -> Policy | SocketPolicy | None:
    if isinstance(route, APIRoute):
        for dependency in route.dependencies:
            if isinstance(dependency.dependency, Policy):
                return dependency.dependency
    if isinstance(route, APIWebSocketRoute):
        for dependency in route.dependencies:
            if isinstance(dependency.dependency, SocketPolicy):
                return dependency.dependency
    return None


class RouteWithoutPolicyError(RuntimeError):
    """A route was mounted without an access policy: refuse to serve it at all."""


def enforce_policies(routes: Iterable[BaseRoute], public_mounts: set[str]) -> None:
    """Refuse to start when any route has no explicit policy (deny by default)."""
    missing: list[str] = []
    for route in routes:
        if isinstance(route, Mount):
            if route.path not in public_mounts:
                missing.append(route.path)
            continue
        if isinstance(route, APIRoute) and policy_of(route) is None:
            methods = ",".join(sorted(route.methods or []))
            missing.append(f"{methods} {route.path}")
        elif isinstance(route, APIWebSocketRoute):
            if policy_of(route) is None:
                missing.append(f"WEBSOCKET {route.path}")
        elif not isinstance(route, APIRoute):
            # FastAPI's own docs routes are disabled in app.py and served as APIRoutes instead.
            missing.append(f"{route.__class__.__name__} {getattr(route, 'path', route)}")
    if missing:
        raise RouteWithoutPolicyError("routes without an access policy: " + "; ".join(missing))


def describe(route: Any) -> str:
    policy = policy_of(route)
    return policy.name if policy else "-"
