"""Pages of the patient portal (/portail), made for a phone: activation, sign-in, password reset,
my appointments (book, cancel, move, accept an offer), who opened my record, my consents. And the
staff's side on the patient's file: hand an activation code, record or revoke a proxy.

Thin: portal.service and scheduling.service decide, audit and refuse. Every patient page names
the person it is about (`pour`): the account's own record or a child's it holds a proxy for.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.messaging import consent
from naho.messaging import pages as messaging_pages
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep, client_address
from naho.platform.errors import DomainError
from naho.platform.security import service as security
from naho.platform.security.actor import Actor
from naho.platform.security.passwords import new_totp_secret, totp_uri
from naho.platform.security.policy import PUBLIC, requires
from naho.platform.security.rules import Role
from naho.portal import service
from naho.scheduling import service as scheduling
from naho.scheduling.pages import CONSULTATION_LABELS, refusal_name
from naho.web.pages import set_session_cookie
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
PATIENT = requires(Role.PATIENT)
#: Staff who hand activation codes and record proxies (the service checks the patient).
ISSUERS = requires(*service.ISSUERS)

REFUSALS = {
    "SlotTaken": i18n.N_("This slot has just been booked by someone else: choose another one."),
    "TooLateForPatient": i18n.N_("Too close to the appointment to do it online: call the secretariat."),
    "SlotInThePast": i18n.N_("This slot has already started."),
    "AppointmentNotFound": i18n.N_("This appointment no longer exists or is already cancelled."),
    "OfferNotFound": i18n.N_("This offer has expired."),
    "SlotNotFound": i18n.N_("This slot no longer exists."),
    "AlreadyWaiting": i18n.N_("You are already on this waiting list."),
}
DONE = {
    "reserve": i18n.N_("Your appointment is booked."),
    "annule": i18n.N_("Your appointment is cancelled."),
    "deplace": i18n.N_("Your appointment is moved."),
    "attente": i18n.N_("You are on the waiting list: if a slot frees up, it is offered to you by e-mail."),
}
PURPOSE_LABELS = {
    consent.COMMUNITY_PROFESSIONALS: i18n.N_(
        "Sharing my documents with my doctor (GP) and the professionals who follow me outside the hospital, "
        "by secure messaging"),
    consent.GROUP_ESTABLISHMENTS: i18n.N_(
        "Sharing my data between the establishments of the hospital group, with professionals "
        "who are not in my care team"),
    consent.RESEARCH: i18n.N_("Use of my data for medical research"),
}
PURPOSE_EXPLANATIONS = {
    consent.COMMUNITY_PROFESSIONALS: i18n.N_(
        "After a stay or a consultation, the hospital sends the letters and results to your doctor and to "
        "the professionals who follow you, by a secure health messaging service. If you object, nothing is "
        "sent to them: you give them your documents yourself."),
    consent.GROUP_ESTABLISHMENTS: i18n.N_(
        "The hospitals of the group share one record. The professionals who take care of you read it, "
        "whatever the hospital. You can object to your data being shared with professionals of the group "
        "who are not in your care team: then no one from a hospital of the group that has not treated you "
        "can open your record, not even in an emergency."),
    consent.RESEARCH: i18n.N_(
        "Data from your record may be reused, without your name, for medical research approved under the "
        "law, to improve care. If you object, your data is not used in new research. This does not change "
        "your care."),
}
#: How a word was given, as the portal tells it (staff names are not shown, as in "who opened").
SOURCE_LABELS = {
    consent.PATIENT: i18n.N_("By the patient, on the portal"),
    consent.PARENT: i18n.N_("By a parent, on the portal"),
    consent.STAFF: i18n.N_("By the hospital staff, on the patient's word"),
}
CONSENT_DONE = {"oppose": i18n.N_("Your objection is recorded."),
                "retire": i18n.N_("Your objection is withdrawn.")}
BASIS_LABELS = {"care_team": i18n.N_("Care team"), "role": i18n.N_("Administrative role"),
                "break_the_glass": i18n.N_("Emergency access (break-the-glass)"), "self": i18n.N_("You")}


def _people(container: ContainerDep, actor: Actor) -> list[service.Person]:
    with container.uow() as uow:
        return service.people_of(uow.session, actor.account_id)


def _chosen(people: list[service.Person], pour: uuid.UUID | None) -> service.Person:
    """The person a page is about: the one asked for among those the account acts for, else the first."""
    for person in people:
        if person.patient_id == pour:
            return person
    if not people:
        raise service.NotFoundOnPortal("this account acts for no patient")
    return people[0]


def _home(pour: uuid.UUID, *, done: str | None = None, error: str | None = None) -> Response:
    query = f"?pour={pour}" + (f"&fait={done}" if done else "") + (f"&erreur={error}" if error else "")
    return RedirectResponse(f"/portail{query}", status_code=303)


def _door(container: ContainerDep, actor: Actor) -> service.PortalDoor:
    return service.PortalDoor(container.ports["care"], actor.account_id)


# --- signed out --------------------------------------------------------------------------------------

@router.get("/portail/activation", dependencies=[Depends(PUBLIC)])
def activation_form(request: Request) -> Response:
    return render(request, "portal/activation.html")


@router.post("/portail/activation", dependencies=[Depends(PUBLIC)])
def activation(request: Request, container: ContainerDep, code: Annotated[str, Form(max_length=40)],
               birth_date: Annotated[date, Form()], email: Annotated[str, Form(max_length=254)],
               password: Annotated[str, Form(max_length=200)]) -> Response:
    address = client_address(request)
    try:
        service.activate(container.uow(), code=code, birth_date=birth_date, email=email, password=password,
                         address=address)
    except (service.ActivationRefused, service.AlreadyActivated, service.TooManyAttempts) as exc:
        messages = {
            "ActivationRefused": i18n._("This code and birth date do not open an account. "
                                        "Check them, or ask the admission desk for a new code."),
            "AlreadyActivated": i18n._("An account is already open for this patient: sign in."),
            "TooManyAttempts": i18n._("Too many attempts. Wait a few minutes before trying again."),
        }
        message = messages[type(exc).__name__]
        field = exc.extra.get("field")
        if field == "password":
            message = i18n._("The password must have at least 12 characters and not contain your e-mail address.")
        elif field == "email":
            message = i18n._("Give another e-mail address: this one cannot be used.")
        return render(request, "portal/activation.html", {"error": message, "email": email},
                      status_code=exc.status)
    signed = security.sign_in(container.uow(), container.settings, username=email, password=password,
                              address=address, user_agent=request.headers.get("user-agent"))
    response = RedirectResponse("/portail", status_code=303)
    set_session_cookie(response, signed.token, container)
    return response


@router.get("/portail/connexion", dependencies=[Depends(PUBLIC)])
def login_form(request: Request) -> Response:
    return render(request, "portal/login.html")


@router.post("/portail/connexion", dependencies=[Depends(PUBLIC)])
def login(request: Request, container: ContainerDep, email: Annotated[str, Form(max_length=254)],
          password: Annotated[str, Form(max_length=200)]) -> Response:
    try:
        signed = security.sign_in(container.uow(), container.settings, username=email, password=password,
                                  address=client_address(request), user_agent=request.headers.get("user-agent"))
    except (security.LoginRefused, security.LoginThrottled) as exc:
        message = (i18n._("Too many failed attempts. Wait a few minutes before trying again.")
                   if isinstance(exc, security.LoginThrottled) else i18n._("Unknown e-mail address or wrong password."))
        return render(request, "portal/login.html", {"error": message, "email": email}, status_code=exc.status)
    target = "/connexion/second-facteur?suivant=/portail" if signed.mfa_pending else "/portail"
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, signed.token, container)
    return response


@router.get("/portail/mot-de-passe-oublie", dependencies=[Depends(PUBLIC)])
def forgotten_form(request: Request) -> Response:
    return render(request, "portal/forgotten.html")


@router.post("/portail/mot-de-passe-oublie", dependencies=[Depends(PUBLIC)])
async def forgotten(request: Request, container: ContainerDep, email: Annotated[str, Form(max_length=254)]) -> Response:
    await run_in_threadpool(service.request_password_reset, container.uow(), email, address=client_address(request))
    # The same page whether or not an account has this address.
    return render(request, "portal/forgotten.html", {"sent": True})


@router.get("/portail/reinitialiser", dependencies=[Depends(PUBLIC)])
def reset_form(request: Request, jeton: Annotated[str, Query(max_length=100)] = "") -> Response:
    return render(request, "portal/reset.html", {"token": jeton})


@router.post("/portail/reinitialiser", dependencies=[Depends(PUBLIC)])
def reset(request: Request, container: ContainerDep, token: Annotated[str, Form(max_length=100)],
          password: Annotated[str, Form(max_length=200)]) -> Response:
    try:
        service.reset_password(container.uow(), token, password, address=client_address(request))
    except (service.TokenRefused, service.TooManyAttempts) as exc:
        message = (i18n._("The password must have at least 12 characters and not contain your e-mail address.")
                   if exc.extra.get("field") == "password" else i18n._("This link is wrong, already used or expired."))
        return render(request, "portal/reset.html", {"token": token, "error": message}, status_code=exc.status)
    return render(request, "portal/login.html", {"notice": i18n._("Your password is changed: sign in.")})


@router.get("/portail/verifier", dependencies=[Depends(PUBLIC)])
def verify(request: Request, container: ContainerDep, jeton: Annotated[str, Query(max_length=100)] = "") -> Response:
    try:
        service.verify_email(container.uow(), jeton, address=client_address(request))
    except (service.TokenRefused, service.TooManyAttempts):
        return render(request, "portal/login.html", {"error": i18n._("This link is wrong, already used or expired.")},
                      status_code=422)
    return render(request, "portal/login.html", {"notice": i18n._("Your e-mail address is confirmed.")})


# --- signed in ---------------------------------------------------------------------------------------

@router.get("/portail", dependencies=[Depends(PATIENT)])
def home(request: Request, container: ContainerDep, actor: ActorDep, pour: uuid.UUID | None = None,
         fait: Annotated[str | None, Query(max_length=20)] = None,
         erreur: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    people = _people(container, actor)
    person = _chosen(people, pour)
    door = _door(container, actor)
    appointments = scheduling.patient_appointments(container.uow(), actor, person.patient_id, door)
    offers = scheduling.offers_for(container.uow(), actor, person.patient_id, door)
    labels = {k: i18n._(v) for k, v in CONSULTATION_LABELS.items()}
    return render(request, "portal/home.html", {
        "people": people, "person": person, "appointments": appointments, "offers": offers, "labels": labels,
        "done": i18n._(DONE[fait]) if fait in DONE else None,
        "error": i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None})


@router.get("/portail/rendez-vous/nouveau", dependencies=[Depends(PATIENT)])
def search(request: Request, container: ContainerDep, actor: ActorDep, pour: uuid.UUID | None = None,
           specialite: Annotated[str, Query(max_length=80)] = "",
           etablissement: Annotated[str, Query(max_length=40)] = "",
           deplacer: uuid.UUID | None = None) -> Response:
    person = _chosen(_people(container, actor), pour)
    with container.uow() as uow:
        s = uow.session
        specialties = scheduling.specialties(s)
        establishments = {v.establishment_code: v.establishment_name for v in scheduling.list_schedules(s)}
        slots = scheduling.search_slots(s, now=container.clock.now(), specialty=specialite or None,
                                        establishment_code=etablissement or None, limit=30) if specialite else []
    labels = {k: i18n._(v) for k, v in CONSULTATION_LABELS.items()}
    return render(request, "portal/search.html", {
        "person": person, "specialties": specialties, "establishments": establishments, "slots": slots,
        "specialty": specialite, "establishment": etablissement, "labels": labels, "moving": deplacer})


@router.post("/portail/rendez-vous", dependencies=[Depends(PATIENT)])
def book(container: ContainerDep, actor: ActorDep, slot_id: Annotated[uuid.UUID, Form()],
         patient_id: Annotated[uuid.UUID, Form()], moving: Annotated[str, Form(max_length=40)] = "") -> Response:
    door = _door(container, actor)
    try:
        if moving:
            scheduling.reschedule(container.uow(), actor, uuid.UUID(moving), slot_id, door)
        else:
            scheduling.book(container.uow(), actor, slot_id, patient_id, door)
    except DomainError as exc:
        return _home(patient_id, error=refusal_name(exc))
    return _home(patient_id, done="deplace" if moving else "reserve")


@router.post("/portail/liste-attente", dependencies=[Depends(PATIENT)])
def wait(container: ContainerDep, actor: ActorDep, patient_id: Annotated[uuid.UUID, Form()],
         specialty: Annotated[str, Form(max_length=80)], establishment: Annotated[str, Form(max_length=40)] = "",
         consultation_type: Annotated[str, Form(max_length=30)] = "first_visit") -> Response:
    try:
        scheduling.join_waiting_list(container.uow(), actor, patient_id, _door(container, actor),
                                     consultation_type=consultation_type, specialty=specialty,
                                     establishment_code=establishment or None)
    except DomainError as exc:
        return _home(patient_id, error=refusal_name(exc))
    return _home(patient_id, done="attente")


@router.post("/portail/rendez-vous/{appointment_id}/annuler", dependencies=[Depends(PATIENT)])
def cancel(appointment_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
           patient_id: Annotated[uuid.UUID, Form()]) -> Response:
    try:
        scheduling.cancel(container.uow(), actor, appointment_id, _door(container, actor))
    except DomainError as exc:
        return _home(patient_id, error=refusal_name(exc))
    return _home(patient_id, done="annule")


@router.post("/portail/offres/{entry_id}/accepter", dependencies=[Depends(PATIENT)])
def accept(entry_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
           patient_id: Annotated[uuid.UUID, Form()]) -> Response:
    try:
        scheduling.accept_offer(container.uow(), actor, entry_id, _door(container, actor))
    except DomainError as exc:
        return _home(patient_id, error=refusal_name(exc))
    return _home(patient_id, done="reserve")


@router.get("/portail/acces", dependencies=[Depends(PATIENT)])
def accesses(request: Request, container: ContainerDep, actor: ActorDep, pour: uuid.UUID | None = None) -> Response:
    person = _chosen(_people(container, actor), pour)
    lines = service.who_opened(container.uow(), actor, person.patient_id, container.ports["care"])
    bases = {k: i18n._(v) for k, v in BASIS_LABELS.items()}
    return render(request, "portal/accesses.html", {"person": person, "lines": lines, "bases": bases})


@router.get("/portail/courriers", dependencies=[Depends(PATIENT)])
def letters(request: Request, container: ContainerDep, actor: ActorDep, pour: uuid.UUID | None = None) -> Response:
    person = _chosen(_people(container, actor), pour)
    sent = service.letters_sent(container.uow(), actor, person.patient_id, container.ports["care"])
    return render(request, "portal/letters.html", {"person": person, "letters": sent,
                                                    "statuses": messaging_pages.STATUS_LABELS})


@router.get("/portail/resultats", dependencies=[Depends(PATIENT)])
def results(request: Request, container: ContainerDep, actor: ActorDep, pour: uuid.UUID | None = None) -> Response:
    person = _chosen(_people(container, actor), pour)
    view = service.released_results(container.uow(), actor, person.patient_id, container.ports["care"])
    return render(request, "portal/results.html", {"person": person, "view": view})


@router.get("/portail/consentements", dependencies=[Depends(PATIENT)])
def consents(request: Request, container: ContainerDep, actor: ActorDep, pour: uuid.UUID | None = None,
             fait: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    people = _people(container, actor)
    person = _chosen(people, pour)
    lines = service.consents(container.uow(), actor, person.patient_id, container.ports["care"])
    return render(request, "portal/consents.html", {
        "people": people, "person": person, "lines": lines, "purposes": PURPOSE_LABELS,
        "explanations": PURPOSE_EXPLANATIONS, "sources": SOURCE_LABELS,
        "done": i18n._(CONSENT_DONE[fait]) if fait in CONSENT_DONE else None})


@router.post("/portail/consentements", dependencies=[Depends(PATIENT)])
def change_consent(container: ContainerDep, actor: ActorDep, patient_id: Annotated[uuid.UUID, Form()],
                   purpose: Annotated[str, Form(max_length=40)],
                   objects: Annotated[str, Form(max_length=5)]) -> Response:
    """The patient (or a parent) objects or withdraws; the service refuses anyone else."""
    service.change_consent(container.uow(), actor, patient_id, purpose, objects=objects == "oui",
                           care=container.ports["care"])
    done = "oppose" if objects == "oui" else "retire"
    return RedirectResponse(f"/portail/consentements?pour={patient_id}&fait={done}", status_code=303)


@router.get("/portail/securite", dependencies=[Depends(PATIENT)])
def security_page(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    with container.uow() as uow:
        enabled = security.has_second_factor(uow.session, actor.account_id)
    secret = None if enabled else new_totp_secret()
    return render(request, "portal/security.html", {
        "enabled": enabled, "secret": secret, "uri": totp_uri(secret, actor.username) if secret else None})


@router.post("/portail/securite", dependencies=[Depends(PATIENT)])
def enable_second_factor(request: Request, container: ContainerDep, actor: ActorDep,
                         secret: Annotated[str, Form(max_length=64)],
                         code: Annotated[str, Form(max_length=10)]) -> Response:
    """The secret travels in the form: it is this person's own, shown to them to scan anyway;
    it is kept only once their application proves it shows the right code."""
    try:
        security.enable_totp(container.uow(), actor, secret=secret, code=code)
    except security.TotpCodeRefused:
        return render(request, "portal/security.html", {
            "enabled": False, "secret": secret, "uri": totp_uri(secret, actor.username),
            "error": i18n._("Wrong code: check the time of your phone and try again.")}, status_code=422)
    return render(request, "portal/security.html", {"enabled": True, "done": True})


@router.post("/portail/securite/email", dependencies=[Depends(PATIENT)])
def enable_email_second_factor(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    """A code by e-mail at each sign-in, for patients without an authenticator application."""
    try:
        service.enable_email_second_factor(container.uow(), actor)
    except (service.EmailNotVerified, security.EmailSecondFactorRefused) as exc:
        message = (i18n._("Confirm your e-mail address first, with the link sent when you opened your account.")
                   if isinstance(exc, service.EmailNotVerified)
                   else i18n._("Codes by e-mail cannot be turned on for this account."))
        secret = new_totp_secret()
        return render(request, "portal/security.html", {
            "enabled": False, "secret": secret, "uri": totp_uri(secret, actor.username), "error": message},
            status_code=exc.status)
    return render(request, "portal/security.html", {"enabled": True, "done": True, "by_email": True})


@router.post("/portail/procurations/{proxy_id}/fin", dependencies=[Depends(PATIENT)])
def end_my_proxy(proxy_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    service.revoke_proxy(container.uow(), actor, proxy_id, container.ports["care"])
    return RedirectResponse("/portail", status_code=303)


# --- the staff's side, from the patient's file ---------------------------------------------------------

def _staff_page(request: Request, container: ContainerDep, actor: Actor, patient_id: uuid.UUID,
                status_code: int = 200, **extra: object) -> Response:
    name, status = service.staff_view(container.uow(), actor, patient_id, container.ports["care"])
    return render(request, "portal/staff.html", {"patient_id": patient_id, "name": name, "status": status, **extra},
                  status_code=status_code)


@router.get("/patients/{patient_id}/portail", dependencies=[Depends(ISSUERS)])
def staff_page(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    return _staff_page(request, container, actor, patient_id)


@router.post("/patients/{patient_id}/portail/code", dependencies=[Depends(ISSUERS)])
def issue_code(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    try:
        code, expires = service.issue_activation_code(container.uow(), actor, patient_id, container.ports["care"])
    except service.AlreadyActivated:
        return _staff_page(request, container, actor, patient_id,
                           error=i18n._("This patient already has a portal account."), status_code=409)
    # Shown once: only its hash is kept.
    return _staff_page(request, container, actor, patient_id, code=code, expires=expires)


@router.post("/patients/{patient_id}/portail/procurations", dependencies=[Depends(ISSUERS)])
def add_proxy(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
              parent: Annotated[str, Form(max_length=254)] = "",
              evidence: Annotated[str, Form(max_length=300)] = "") -> Response:
    try:
        service.create_proxy(container.uow(), actor, patient_id, parent, evidence, container.ports["care"])
    except service.ProxyRefused as exc:
        messages = {"evidence": i18n._("Say which document was checked."),
                    "patient": i18n._("The patient is of age: they open their own account."),
                    "parent": i18n._("No portal account with this e-mail, or it already acts for the patient.")}
        error = messages.get(str(exc.extra.get("field")), exc.detail)
        return _staff_page(request, container, actor, patient_id, error=error, status_code=422)
    return RedirectResponse(f"/patients/{patient_id}/portail", status_code=303)


@router.post("/patients/{patient_id}/portail/procurations/{proxy_id}/fin", dependencies=[Depends(ISSUERS)])
def end_proxy(patient_id: uuid.UUID, proxy_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    service.revoke_proxy(container.uow(), actor, proxy_id, container.ports["care"])
    return RedirectResponse(f"/patients/{patient_id}/portail", status_code=303)
