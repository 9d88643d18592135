"""The composition root: builds the engine, the adapters and the routers (STYLE.md R5)."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from naho.config import Settings
from naho.identity import api as identity_api
from naho.identity import pages as identity_pages
from naho.identity.insi import SimulatedInsi
from naho.interop import fhir, fhir_api, fhir_imaging, fhir_lab, fhir_results, fhir_scheduling, fhir_write, lab_sender
from naho.interop.hl7_listener import start_listener, stop_listener
from naho.interop.hl7_sender import make_adt_handler
from naho.medication import api as medication_api
from naho.medication import dispensing_pages as medication_dispensing_pages
from naho.medication import emar_pages as medication_emar_pages
from naho.medication import prescription_pages as medication_prescription_pages
from naho.medication import review as medication_review
from naho.medication import review_pages as medication_review_pages
from naho.medication import service as medication_service
from naho.messaging import api as messaging_api
from naho.messaging import consent as messaging_consent
from naho.messaging import inbound as messaging_inbound
from naho.messaging import inbound_pages as messaging_inbound_pages
from naho.messaging import letter_pages as messaging_letter_pages
from naho.messaging import mailbox as messaging_mailbox
from naho.messaging import merge as messaging_merge
from naho.messaging import pages as messaging_pages
from naho.messaging.sending import LETTER_TOPIC, load_config
from naho.messaging.smtp import make_letter_handler
from naho.platform import i18n
from naho.platform.clock import Clock, SystemClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.deps import Container
from naho.platform.errors import DomainError, problem
from naho.platform.events import EventBus
from naho.platform.i18n import N_
from naho.platform.outbox import Handler, OutboxWorker
from naho.platform.security.policy import (
    AUTHENTICATION_REQUIRED,
    CSRF_REFUSED,
    PUBLIC,
    ROLE_REFUSED,
    LoginRequired,
    enforce_policies,
)
from naho.platform.workers import Job, WorkerRunner
from naho.portal import mail as portal_mail
from naho.portal import pages as portal_pages
from naho.portal import service as portal_service
from naho.record import api as record_api
from naho.record import care_team_pages
from naho.record import pages as record_pages
from naho.record.service import CARE, MOVER, PatientMoved
from naho.results import api as results_api
from naho.results import imaging
from naho.results import merge as results_merge
from naho.results import order_pages as results_order_pages
from naho.results import orders as results_orders
from naho.results import pages as results_pages
from naho.results import release as results_release
from naho.results import release_pages as results_release_pages
from naho.results import service as results_service
from naho.scheduling import api as scheduling_api
from naho.scheduling import pages as scheduling_pages
from naho.scheduling import service as scheduling_service
from naho.sites import api as sites_api
from naho.sites import pages as sites_pages
from naho.staff import api as staff_api
from naho.staff import pages as staff_pages
from naho.staff.shell import make_shell_port
from naho.telehealth import pages as telehealth_pages
from naho.telehealth.signalling import Hub
from naho.web import admin as web_admin
from naho.web import middleware, sso
from naho.web import pages as web_pages
from naho.web.templating import PACKAGE_ROOT, make_templates, render

log = logging.getLogger(__name__)

STATIC_DIR = PACKAGE_ROOT / "web" / "static"
#: Third-party JS installed from the npm registry by the setup command (never committed).
VENDOR_HTMX_DIR = PACKAGE_ROOT.parent / "node_modules" / "htmx.org" / "dist"

_STATUS_TITLES = {
    400: N_("Bad request"),
    401: N_("Sign-in required"),
    403: N_("Access refused"),
    404: N_("Page not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    422: N_("Invalid request"),
    429: N_("Too many requests"),
    500: N_("Server error"),
}


TRANSLATED_DETAILS = {AUTHENTICATION_REQUIRED, CSRF_REFUSED, ROLE_REFUSED}


def _freeze_startup_objects(container: Container) -> None:
    """Build the long-lived caches (the medication catalogue), then freeze every object alive:
    a full collection no longer scans them (bench/medication.py: the plan of care's p95 went from
    234 ms, one page in twenty paying a 220 ms collection, to about 40 ms)."""
    with container.uow() as uow, contextlib.suppress(DomainError):  # no formulary yet: built at first use
        medication_service.catalogue(uow.session)
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               outbox_handlers: dict[str, Handler] | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    container = Container(
        settings=settings, engine=engine, session_factory=make_session_factory(engine),
        clock=clock or SystemClock(), bus=EventBus(),
    )
    container.ports["shell"] = make_shell_port(container.session_factory)
    container.ports["outbox_handlers"] = dict(outbox_handlers or {})
    if settings.hl7_adt_destination:  # naho's own movements as PAM FR ADT over MLLP
        container.ports["outbox_handlers"].setdefault("hl7.adt", make_adt_handler(settings, clock=container.clock))
    # Secure messaging: the group's mailbox (certificate from configuration), letters by SMTP.
    container.ports["messaging"] = load_config(settings)
    if settings.messaging_smtp_host:
        container.ports["outbox_handlers"].setdefault(
            LETTER_TOPIC, make_letter_handler(settings, container.session_factory, container.clock))
        container.ports["outbox_handlers"].setdefault(  # non-integration notifications of received mail
            messaging_inbound.ANSWER_TOPIC, messaging_mailbox.make_answer_handler(settings, container.session_factory))
    # Schedule, Slot and Appointment join the CapabilityStatement (their routes come before fhir_api's).
    fhir_api.SUPPORTED.update(fhir_scheduling.SUPPORTED)
    fhir_api.SUPPORTED.update(fhir_results.SUPPORTED)
    fhir_api.SUPPORTED.update(fhir_lab.SUPPORTED)  # laboratory orders and specimens, likewise
    fhir_api.SUPPORTED.update(fhir_imaging.SUPPORTED)
    # The one door to patient data asks the record who is in the care team.
    # The door's care port: record's care team, with the consent registry's objection to sharing
    # between establishments (naho.messaging.consent).
    care = messaging_consent.ConsentAwareCare(CARE)
    container.ports["care"] = care
    # Teleconsultation: who is connected to which room (signalling relays between the two).
    container.ports["telehealth_hub"] = Hub()
    # Scheduling's routes: a patient's account reaches its own record through the portal's door.
    container.ports["door_for"] = portal_service.door_for(care)
    if settings.portal_smtp_host:  # patient mails: reminders, offers, account links
        mailer = portal_mail.make_mail_handler(settings, container.session_factory, container.clock)
        for topic in (scheduling_service.REMINDER_TOPIC, portal_service.ACCOUNT_MAIL_TOPIC,
                      results_release.RESULT_MAIL_TOPIC):
            container.ports["outbox_handlers"].setdefault(topic, mailer)
    # A discharge stops the stay's medication orders (in its own transaction, after the discharge's).
    container.bus.subscribe(PatientMoved, medication_service.stop_orders_on_discharge(container.uow))
    # Domains whose patient-owned rows follow a merge (identity vigilance).
    container.ports["patient_movers"] = [MOVER, medication_service.MOVER, medication_review.MOVER]
    container.ports["patient_movers"].append(messaging_merge.MOVER)
    container.ports["patient_movers"].append(results_merge.MOVER)
    container.ports["patient_movers"].append(results_orders.MOVER)
    # Laboratory results (ORU^R01) arrive on the MLLP listener's port, beside ADT.
    results_settings = results_service.ResultsSettings(
        authority=settings.hl7_application, application=settings.hl7_application, facility=settings.hl7_facility,
        zone=settings.timezone, critical=results_service.load_critical_rules(settings.critical_values_file),
        release=results_release.load_release_rules(settings.release_rules_file),
        notify_patients=results_release.RESULT_MAIL_TOPIC in container.ports["outbox_handlers"])
    container.ports["results_settings"] = results_settings
    container.ports["hl7_results"] = results_service.make_receiver(container.session_factory, container.clock,
                                                                   results_settings, care)
    if settings.hl7_lab_destination:  # laboratory orders as OML^O21 over MLLP
        container.ports["outbox_handlers"].setdefault(
            lab_sender.TOPIC, lab_sender.make_lab_order_handler(settings, container.uow, container.clock))
    # Imaging: Orthanc by DICOMweb when configured, else the local DICOM store; orders to the RIS port.
    imaging.wire(container, settings)
    if not settings.production:
        # Production needs the real INSi adapter (establishment certificate); none is shipped yet.
        container.ports["insi"] = SimulatedInsi()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner: WorkerRunner | None = None
        if settings.workers:
            worker = OutboxWorker(
                container.session_factory, container.clock, container.ports["outbox_handlers"],
                max_attempts=settings.outbox_max_attempts, backoff_seconds=settings.outbox_backoff_seconds,
            )
            escalate = lambda: results_service.escalate_overdue(container.uow(), results_settings.critical)  # noqa: E731
            reminders = lambda: scheduling_service.queue_due_reminders(container.uow())  # noqa: E731
            offers = lambda: scheduling_service.expire_offers(container.uow())  # noqa: E731
            releases = lambda: results_release.release_due(  # noqa: E731
                container.uow(), results_settings.release, notify=results_settings.notify_patients)
            runner = WorkerRunner(engine, [Job("outbox", worker.run_once, settings.outbox_poll_seconds),
                                           Job("lab-alert-escalation", escalate, 60.0),
                                           Job("appointment-reminders", reminders, 300.0),
                                           Job("waiting-list-offers", offers, 60.0),
                                           Job("result-release", releases, 300.0)])
            mailbox = messaging_mailbox.source_from_settings(settings)
            if mailbox is not None and container.ports["messaging"] is not None:
                receive = lambda raw: messaging_inbound.receive_message(  # noqa: E731
                    container.uow(), raw, config=container.ports["messaging"], port=care)
                runner.jobs.append(Job("messaging-mailbox", lambda: messaging_mailbox.poll_mailbox(mailbox, receive),
                                       settings.messaging_mailbox_poll_seconds))
            runner.start()
            app.state.workers = runner
        # HL7 v2 ADT over MLLP (IHE PAM FR); one process only: the port is exclusive.
        mllp = await start_listener(container, settings.mllp_host, settings.mllp_port) if settings.mllp_port else None
        freeze = settings.freeze_startup_objects
        if freeze or (freeze is None and settings.mode != "test"):
            _freeze_startup_objects(container)
        try:
            yield
        finally:
            if mllp is not None:
                await stop_listener(mllp)
            if runner:
                runner.stop()
            imaging.close(container)
            engine.dispose()

    app = FastAPI(
        title="naho", version="0.1.0", lifespan=lifespan,
        description="Hospital information system of a French hospital group (GHT).",
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.container = container
    app.state.templates = make_templates(settings.locale)
    for filters in (identity_pages.TEMPLATE_FILTERS, record_pages.TEMPLATE_FILTERS):
        app.state.templates.env.filters.update(filters)
    middleware.install(app, production=settings.production)
    if settings.oidc_enabled:
        from starlette.middleware.sessions import SessionMiddleware

        app.state.oauth = sso.make_oauth(settings)
        app.add_middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie=sso.FLOW_COOKIE,
                           max_age=600, same_site="lax", https_only=settings.production)

    for router in (messaging_pages.router, messaging_api.router, messaging_inbound_pages.router,
                   messaging_letter_pages.router, messaging_letter_pages.api,
                   web_pages.router, sso.router, web_admin.router, sites_pages.router, sites_api.router,
                   staff_pages.router, staff_pages.workspace, staff_api.router, identity_pages.router,
                   identity_api.router, record_pages.router, care_team_pages.router,
                   record_api.router, results_pages.router, results_release_pages.router, results_api.router,
                   results_order_pages.router, *imaging.ROUTERS, medication_api.router,
                   medication_review_pages.router, fhir_scheduling.router, fhir_results.router, fhir_lab.router,
                   fhir_imaging.router, fhir_api.router,
                   fhir_write.router, medication_emar_pages.router, medication_dispensing_pages.router,
                   medication_dispensing_pages.api, medication_prescription_pages.router,
                   scheduling_api.router, scheduling_pages.router, portal_pages.router, telehealth_pages.router):
        # Routers carry their prefix and policy themselves: their routes are added as they are,
        # so every route the app serves is a plain APIRoute (or APIWebSocketRoute) whose policy can be checked.
        app.router.routes.extend(router.routes)

    @app.get("/api/openapi.json", dependencies=[Depends(PUBLIC)], include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    if VENDOR_HTMX_DIR.is_dir():
        app.mount("/static/vendor/htmx", StaticFiles(directory=VENDOR_HTMX_DIR), name="vendor-htmx")
    else:
        log.warning("htmx is not installed (run the setup command): pages work without it")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    enforce_policies(app.routes, public_mounts={"/static", "/static/vendor/htmx"})
    _install_error_handlers(app)
    return app


def _is_api(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def _error_response(request: Request, status: int, detail: str | None,
                    headers: dict[str, str] | None = None, **extra: Any) -> Response:
    if fhir.is_fhir_path(request.url.path):
        # FHIR clients read errors as an OperationOutcome, with the same status.
        return fhir.outcome_response(status, detail, headers=headers, **extra)
    title = _STATUS_TITLES.get(status, "Error")
    if _is_api(request):
        return JSONResponse(problem(status, title, detail, **extra), status_code=status,
                            media_type="application/problem+json", headers=headers)
    friendly = {
        403: N_("You are not allowed to see this page."),
        404: N_("This page does not exist or is not available to you."),
        500: N_("Something went wrong on our side. The team has been told."),
    }
    # A detail written for people (an N_ message id) is shown translated; otherwise the
    # status's own friendly sentence, never an internal English message.
    shown = detail if detail in TRANSLATED_DETAILS else friendly.get(status) or title
    message = i18n._(shown or title)
    return render(request, "shell/error.html", {"title": i18n._(title), "message": message},
                  status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/connexion?suivant={quote(exc.next_url)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_response(request, exc.status_code, str(exc.detail) if exc.detail else None,
                               headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
        return _error_response(request, 422, "the request does not match the expected shape", errors=errors)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return _error_response(request, exc.status, exc.detail, **exc.extra)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_response(request, 500, None)


def repo_path(*parts: str) -> Path:
    return PACKAGE_ROOT.parent.joinpath(*parts)
