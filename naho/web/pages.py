"""The shells' own pages: landing, sign-in and out, second factor, home, account, search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep, client_address
from naho.platform.security import service as security
from naho.platform.security.policy import MFA_PENDING, PUBLIC, SESSION_COOKIE, Policy
from naho.web.templating import render

router = APIRouter()
#: Any signed-in account, whatever its roles.
SIGNED_IN = Policy("signed-in", None)


def safe_next(value: str | None, default: str = "/accueil") -> str:
    """Only local paths: never let a link send a user to another site after sign-in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def set_session_cookie(response: Response, token: str, container: ContainerDep) -> None:
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
    set_session_cookie(response, signed.token, container)
    return response


def _second_factor(request: Request, container: ContainerDep) -> str | None:
    with container.session_factory() as s:
        return security.pending_second_factor(s, request.cookies.get(SESSION_COOKIE, ""))


@router.get("/connexion/second-facteur", dependencies=[Depends(MFA_PENDING)], include_in_schema=False)
def mfa_form(request: Request, container: ContainerDep, suivant: str | None = None) -> Response:
    return render(request, "shell/mfa.html", {"next_url": safe_next(suivant),
                                              "by_email": _second_factor(request, container) == "email"})


@router.post("/connexion/second-facteur", dependencies=[Depends(MFA_PENDING)], include_in_schema=False)
def mfa(request: Request, container: ContainerDep, code: Annotated[str, Form(max_length=12)],
        suivant: Annotated[str, Form()] = "/accueil") -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    try:
        security.complete_second_factor(container.uow(), token=token, code=code)
    except security.SecondFactorRefused as exc:
        by_email = exc.extra.get("second_factor") == "email"
        if exc.extra.get("ended"):
            error = i18n._("Too many wrong codes, or the code has expired: sign in again to receive a new one.")
        elif by_email:
            error = i18n._("Wrong code. Enter the six digits of the last e-mail you received.")
        else:
            error = i18n._("Wrong code. Check your phone's clock and try again.")
        return render(request, "shell/mfa.html", {"error": error, "next_url": safe_next(suivant),
                                                  "by_email": by_email}, status_code=401)
    return RedirectResponse(safe_next(suivant), status_code=303)


@router.post("/deconnexion", dependencies=[Depends(SIGNED_IN)], include_in_schema=False)
def logout(container: ContainerDep, actor: ActorDep) -> Response:
    security.sign_out(container.uow(), actor)
    response = RedirectResponse("/connexion", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


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
