"""The shells' own pages: landing, sign-in and out, second factor, home, account, search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep, client_address
from naho.platform.errors import DomainError
from naho.platform.security import passwords
from naho.platform.security import service as security
from naho.platform.security.models import Account
from naho.platform.security.policy import MFA_PENDING, PUBLIC, SESSION_COOKIE, STAFF, Policy
from naho.sites import service as sites
from naho.staff import service as staff
from naho.web.templating import render

router = APIRouter()
#: Any signed-in account, whatever its roles.
SIGNED_IN = Policy("signed-in", None)


def safe_next(value: str | None, default: str = "/accueil") -> str:
    """Only local paths: never let a link send a user to another site after sign-in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _session_cookie(response: Response, token: str, container: ContainerDep) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=container.settings.production,
        max_age=int(container.settings.session_hours * 3600), path="/",
    )


@router.get("/", dependencies=[Depends(PUBLIC)], include_in_schema=False)
def index(request: Request) -> Response:
    if getattr(request.state, "actor", None):
        return RedirectResponse("/accueil", status_code=303)
    return render(request, "shell/index.html")


@router.get("/connexion", dependencies=[Depends(PUBLIC)], include_in_schema=False)
def login_form(request: Request, suivant: str | None = None) -> Response:
    return render(request, "shell/login.html", {"next_url": safe_next(suivant)})


@router.post("/connexion", dependencies=[Depends(PUBLIC)], include_in_schema=False)
def login(
    request: Request,
    container: ContainerDep,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    suivant: Annotated[str, Form()] = "/accueil",
) -> Response:
    next_url = safe_next(suivant)
    try:
        signed = security.sign_in(
            container.uow(), container.settings, username=username, password=password,
            address=client_address(request), user_agent=request.headers.get("user-agent"),
        )
    except security.LoginThrottled:
        return render(request, "shell/login.html", {
            "error": i18n._("Too many failed attempts. Wait a few minutes before trying again."),
            "username": username, "next_url": next_url}, status_code=429)
    except security.LoginRefused:
        return render(request, "shell/login.html", {
            "error": i18n._("Unknown username or wrong password."),
            "username": username, "next_url": next_url}, status_code=401)
    target = "/connexion/second-facteur?suivant=" + next_url if signed.mfa_pending else next_url
    response = RedirectResponse(target, status_code=303)
    _session_cookie(response, signed.token, container)
    return response


@router.get("/connexion/second-facteur", dependencies=[Depends(MFA_PENDING)], include_in_schema=False)
def mfa_form(request: Request, suivant: str | None = None) -> Response:
    return render(request, "shell/mfa.html", {"next_url": safe_next(suivant)})


@router.post("/connexion/second-facteur", dependencies=[Depends(MFA_PENDING)], include_in_schema=False)
def mfa(request: Request, container: ContainerDep, code: Annotated[str, Form(max_length=12)],
        suivant: Annotated[str, Form()] = "/accueil") -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    try:
        security.complete_second_factor(container.uow(), token=token, code=code)
    except security.SecondFactorRefused:
        return render(request, "shell/mfa.html", {
            "error": i18n._("Wrong code. Check your phone's clock and try again."),
            "next_url": safe_next(suivant)}, status_code=401)
    return RedirectResponse(safe_next(suivant), status_code=303)


@router.post("/deconnexion", dependencies=[Depends(SIGNED_IN)], include_in_schema=False)
def logout(container: ContainerDep, actor: ActorDep) -> Response:
    security.sign_out(container.uow(), actor)
    response = RedirectResponse("/connexion", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/accueil", dependencies=[Depends(STAFF)], include_in_schema=False)
def home(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    shell = container.ports["shell"](request, actor)
    with container.session_factory() as s:
        units = sites.list_units(s, shell.current.code)
        member = staff.staff_of_account(s, actor.account_id)
    return render(request, "shell/home.html", {
        "units": units, "now": container.clock.now(),
        "my_units": member.assignments if member else [],
    })


@router.post("/contexte", dependencies=[Depends(STAFF)], include_in_schema=False)
def switch_establishment(
    container: ContainerDep, actor: ActorDep,
    establishment: Annotated[str, Form(max_length=40)],
    suivant: Annotated[str, Form()] = "/accueil",
) -> Response:
    with container.session_factory() as s:
        sites.get_establishment(s, establishment)  # 404 for an unknown code
    security.set_establishment(container.uow(), actor, establishment)
    return RedirectResponse(safe_next(suivant), status_code=303)


@router.get("/recherche", dependencies=[Depends(STAFF)], include_in_schema=False)
def search(request: Request, container: ContainerDep, actor: ActorDep,
           q: Annotated[str, Query(max_length=100)] = "") -> Response:
    query = q.strip()
    found_units, found_staff = [], []
    if query:
        with container.session_factory() as s:
            needle = query.lower()
            for e in sites.list_establishments(s):
                found_units += [u for u in sites.list_units(s, e.code)
                                if needle in u.name.lower() or needle in u.code.lower()]
            found_staff, _total = staff.list_staff(s, search=query, limit=50)
    return render(request, "shell/search.html", {"query": query, "units": found_units[:50],
                                                  "staff": found_staff})


@router.get("/compte", dependencies=[Depends(STAFF)], include_in_schema=False)
def account(request: Request, container: ContainerDep, actor: ActorDep, totp: int = 0) -> Response:
    with container.session_factory() as s:
        row = s.get(Account, actor.account_id)
        member = staff.staff_of_account(s, actor.account_id)
    context: dict[str, object] = {"staff": member, "totp_enabled": bool(row and row.totp_secret)}
    if totp and not context["totp_enabled"]:
        secret = passwords.new_totp_secret()
        context.update(pending_secret=secret, pending_uri=passwords.totp_uri(secret, actor.username))
    return render(request, "shell/account.html", context)


@router.post("/compte/totp", dependencies=[Depends(STAFF)], include_in_schema=False)
def enable_totp(request: Request, container: ContainerDep, actor: ActorDep,
                secret: Annotated[str, Form(max_length=64)], code: Annotated[str, Form(max_length=12)]) -> Response:
    try:
        security.enable_totp(container.uow(), actor, secret=secret, code=code)
    except DomainError:
        context = {"error": i18n._("Wrong code: the second factor was not enabled."), "pending_secret": secret,
                   "pending_uri": passwords.totp_uri(secret, actor.username)}
        return render(request, "shell/account.html", context, status_code=422)
    return RedirectResponse("/compte", status_code=303)


@router.get("/api/health", dependencies=[Depends(PUBLIC)], tags=["platform"])
async def health(container: ContainerDep) -> dict[str, str]:
    """Liveness and database reachability, for load balancers and monitoring."""
    from sqlalchemy import text

    def ping() -> None:
        with container.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    await run_in_threadpool(ping)
    return {"status": "ok"}


@router.get("/api/me", dependencies=[Depends(SIGNED_IN)], tags=["platform"])
def me(actor: ActorDep) -> dict[str, object]:
    """Who the bearer token or session belongs to."""
    return {"username": actor.username, "display_name": actor.display_name,
            "roles": sorted(actor.roles), "via": actor.via}
