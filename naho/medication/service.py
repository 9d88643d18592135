"""Use cases of medication orders: import the formulary, prescribe with the safety checks, modify,
suspend, resume, stop, stop at discharge, list a patient's orders.

Same shape as record.service: the one door first (purpose care), the patient's context read from
the record (identity, weight and height, allergies, orders in force), the pure checks
(`rules.check_order`), then write, audit, in one transaction. Only physicians prescribe. A
blocking alert refuses the order (422); alerts needing a reason refuse it without one (409);
either refusal is audited and saves nothing else (arrêté du 6 avril 2011: contraindications are
hard stops, every override is traced). Each new version waits for the pharmacist's analysis
(`review_status` pending), which a later step adds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.medication import review_rules, rules
from naho.medication.catalogue import (
    ANSM_INDEX,
    ANSM_THESAURUS,
    FORMULARY,
    ansm_classes,
    ansm_interactions,
    map_to_formulary,
    parse_formulary,
)
from naho.medication.models import (
    FormularyImport,
    FormularyInteraction,
    FormularyProduct,
    FormularySubstance,
    MedicationOrder,
    MedicationOrderAlert,
    PharmacistReview,
)
from naho.medication.protocols import Protocol, ProtocolLine, load_protocols
from naho.medication.schemas import (
    AlertPublic,
    ImportReport,
    OrderCreate,
    OrderPublic,
    PharmacistReviewPublic,
    ProductPublic,
    ProtocolApply,
    ProtocolLinePublic,
    ProtocolPublic,
    StatusChange,
)
from naho.platform import audit, i18n
from naho.platform.access import CareRelationshipPort, PatientNotFound, Purpose, access_patient
from naho.platform.db import advisory_xact_lock
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.security.actor import SYSTEM_ACTOR, Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import chart

#: Order statuses; only `active` orders are given and checked against a new one.
ACTIVE, SUSPENDED, STOPPED, REPLACED = "active", "suspended", "stopped", "replaced"
IN_FORCE = (ACTIVE, SUSPENDED)
#: The pharmacist's analysis of each version (arrêté du 6 avril 2011, art. 13).
REVIEW_PENDING = "pending"
PRESCRIBERS = frozenset({Role.PHYSICIAN})
PRODUCTS_SHOWN = 20
_LOCK_BASE = 0x6D65640000000000  # "med" in the high bytes, the patient's id below
#: Audit tags of what was done (the door's event names what was asked).
_DONE = {SUSPENDED: "medication:order:suspended", ACTIVE: "medication:order:resumed",
         STOPPED: "medication:order:stopped"}


# --- errors ------------------------------------------------------------------------------------------


class PrescriberRequired(Forbidden):
    """Only a physician signs a medication order."""


class OrderInvalid(DomainError):
    """The order is malformed (unknown product or unit, incomplete schedule): nothing was checked."""

    title = "Invalid medication order"


class OrderBlocked(DomainError):
    """A blocking alert stands (contraindication, allergy, missing weight...): never signed."""

    title = "Medication order refused"


class OverrideReasonRequired(Conflict):
    """Alerts need a reason from the prescriber, which was not given."""

    title = "Override reason required"


class OrderNotFound(NotFound):
    """No such order, or not one this person may open."""


class OrderNotInForce(Conflict):
    """The order was stopped or replaced (or is not in the state the change needs)."""


# --- the formulary as stored ----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A rules value as JSON: dataclasses as objects, sets sorted, enums by value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _substance(data: dict[str, Any]) -> rules.Substance:
    return rules.Substance(
        code=data["code"], name=data["name"], atc=data["atc"],
        dose_limits=tuple(rules.DoseLimit(**{**d, "routes": frozenset(d["routes"])}) for d in data["dose_limits"]),
        renal=tuple(rules.RenalRule(**r) for r in data["renal"]),
        pregnancy=rules.PregnancyRisk(data["pregnancy"]) if data["pregnancy"] else None,
        pregnancy_note=data["pregnancy_note"], duplicate_class=data["duplicate_class"],
        interaction_keys=frozenset(data["interaction_keys"]), narcotic=data["narcotic"],
        age=tuple(rules.AgeRule(**a) for a in data["age"]))


def _product(data: dict[str, Any]) -> rules.Product:
    components = tuple(rules.Component(
        c["substance"], rules.Quantity(**c["amount"]) if c["amount"] else None, c["volume_ml"])
        for c in data["components"])
    return rules.Product(code=data["code"], name=data["name"], components=components, form=data["form"],
                         routes=frozenset(data["routes"]), ucd=data["ucd"], cip13=tuple(data["cip13"]),
                         narcotic=data["narcotic"])


def _interaction(data: dict[str, Any]) -> rules.Interaction:
    return rules.Interaction(data["left"], data["right"],
                             tuple((rules.InteractionLevel(lv), cond) for lv, cond in data["levels"]),
                             data["mechanism"], data["source"])


def read_formulary_file(path: Path = FORMULARY) -> tuple[rules.Catalogue, str, str]:
    """The catalogue of a formulary file with the shipped ANSM thesaurus, its version and SHA-256."""
    raw = path.read_bytes()
    parsed = parse_formulary(raw.decode("utf-8"), path.name)
    classes = ansm_classes(json.loads(ANSM_INDEX.read_text(encoding="utf-8")))
    pairs = ansm_interactions(json.loads(ANSM_THESAURUS.read_text(encoding="utf-8")))
    return map_to_formulary(parsed, classes, pairs), parsed.version, hashlib.sha256(raw).hexdigest()


def import_formulary(session: Session, actor: Actor, path: Path = FORMULARY, *, now: datetime) -> ImportReport:
    """Store the formulary file, in the caller's transaction; audited.

    Idempotent: substances and products are upserted by code; those no longer in the file become
    inactive, never deleted (past orders name them); interactions are replaced whole. A malformed
    file is refused whole (`catalogue.FormularyError`) before anything is written.
    """
    catalogue, version, sha256 = read_formulary_file(path)
    number = (session.execute(select(func.max(FormularyImport.number))).scalar_one() or 0) + 1
    record = FormularyImport(id=uuid.uuid4(), imported_at=now, imported_by=actor.label, source=path.name,
                             sha256=sha256, version=version, counts={}, number=number)
    session.add(record)
    session.flush()
    added = updated = withdrawn = 0
    substance_rows = {code: {"name": s.name, "atc": s.atc, "definition": _plain(s)}
                      for code, s in catalogue.substances.items()}
    product_rows = {code: {"name": p.name, "atc": catalogue.substances[p.components[0].substance].atc,
                           "form": p.form, "definition": _plain(p)} for code, p in catalogue.products.items()}
    tables: list[tuple[type[FormularySubstance] | type[FormularyProduct], dict[str, dict[str, Any]]]] = [
        (FormularySubstance, substance_rows), (FormularyProduct, product_rows)]
    for table, wanted in tables:
        stored: list[Any] = list(session.scalars(select(table)))  # either table: the same columns
        existing = {row.code: row for row in stored}
        for code, values in wanted.items():
            row = existing.get(code)
            if row is None:
                session.add(table(code=code, active=True, import_id=record.id, **values))
                added += 1
                continue
            if not row.active or any(getattr(row, k) != v for k, v in values.items()):
                updated += 1
            for key, value in values.items():
                setattr(row, key, value)
            row.active, row.import_id = True, record.id
        for code, row in existing.items():
            if code not in wanted and row.active:
                row.active, row.import_id = False, record.id
                withdrawn += 1
    session.flush()
    session.execute(delete(FormularyInteraction))
    if catalogue.interactions:
        session.execute(insert(FormularyInteraction), [
            {"import_id": record.id, "position": n, "left": i.left, "right": i.right, "source": i.source,
             "definition": _plain(i)} for n, i in enumerate(catalogue.interactions)])
    counts = {"substances": len(substance_rows), "products": len(product_rows),
              "interactions": len(catalogue.interactions), "added": added, "updated": updated,
              "withdrawn": withdrawn}
    record.counts = counts
    audit.record(session, actor, "medication:formulary:import", at=now, target=str(record.id),
                 details={"source": path.name, "sha256": sha256, "version": version, **counts})
    return ImportReport(import_id=record.id, version=version, sha256=sha256, **counts)


_CACHE: dict[uuid.UUID, rules.Catalogue] = {}


def catalogue(session: Session) -> rules.Catalogue:
    """The formulary in force (active substances and products, the interactions), rebuilt from the
    tables once per import and kept in memory."""
    latest = session.execute(select(FormularyImport.id).order_by(FormularyImport.number.desc()).limit(1)
                             ).scalar_one_or_none()
    if latest is None:
        raise OrderInvalid("no formulary has been imported (naho medication import)")
    cached = _CACHE.get(latest)
    if cached is not None:
        return cached
    substances = {row.code: _substance(row.definition) for row in session.scalars(
        select(FormularySubstance).where(FormularySubstance.active.is_(True)))}
    products = {row.code: _product(row.definition) for row in session.scalars(
        select(FormularyProduct).where(FormularyProduct.active.is_(True)))}
    interactions = tuple(_interaction(d) for d in session.scalars(
        select(FormularyInteraction.definition).order_by(FormularyInteraction.position)))
    built = rules.Catalogue(substances, products, interactions)
    _CACHE.clear()  # one formulary in force: the previous import's is no longer needed
    _CACHE[latest] = built
    return built


def search_products(uow: UnitOfWork, query: str) -> list[ProductPublic]:
    """Active products whose name contains the words typed (accents and case ignored) or whose
    ATC code starts with the query, for order entry."""
    text = query.strip()
    if not text:
        return []
    with uow:
        cat = catalogue(uow.session)
        words = rules.interaction_key(text).split()
        atc = text.upper()
        found = []
        for product in sorted(cat.products.values(), key=lambda p: p.name):
            first = cat.substances[product.components[0].substance]
            name = rules.interaction_key(f"{product.name} {first.name}")
            if all(w in name for w in words) or first.atc.startswith(atc):
                found.append(ProductPublic(code=product.code, name=product.name, atc=first.atc, form=product.form,
                                           routes=sorted(product.routes), active=True))
            if len(found) >= PRODUCTS_SHOWN:
                break
        return found


def product(uow: UnitOfWork, code: str) -> ProductPublic | None:
    """One active product of the formulary by its code, for order entry."""
    with uow:
        cat = catalogue(uow.session)
        found = cat.products.get(code)
        if found is None:
            return None
        return ProductPublic(code=found.code, name=found.name, atc=cat.substances[found.components[0].substance].atc,
                             form=found.form, routes=sorted(found.routes), active=True)


# --- orders ----------------------------------------------------------------------------------------


def _require_prescriber(actor: Actor) -> None:
    if not actor.roles & PRESCRIBERS:
        raise PrescriberRequired("only a physician signs a medication order")


def _lock_patient(session: Session, patient_id: uuid.UUID) -> None:
    """One signature at a time per patient: two orders signed at once would each be checked
    without the other (duplicate, interaction, daily dose)."""
    advisory_xact_lock(session, _LOCK_BASE ^ (patient_id.int >> 72))


def _rule_order(product: str, dose_value: float, dose_unit: str, route: str, frequency: str,
                times_per_day: int | None, every_hours: float | None, max_per_24h: int | None) -> rules.Order:
    return rules.Order(product, rules.Quantity(dose_value, dose_unit), rules.check_route(route),
                       rules.Frequency(rules.FrequencyKind(frequency), times_per_day, every_hours, max_per_24h))


def _concentration(value: float | None, unit: str | None) -> rules.Concentration | None:
    if value is None and not unit:
        return None
    if value is None or not unit:
        raise rules.BadInfusion("a concentration gives its value and its unit (mg/mL)")
    return rules.Concentration(value, unit.strip())


def _checked(order: rules.Order, concentration: rules.Concentration | None,
             titration_max: float | None) -> list[rules.Order]:
    """What the checks judge: the order with a pump rate in mL/h turned into an amount of drug per
    hour (when the concentration is known), and the top of its titration range, checked like the
    rate itself."""
    checked = [dataclasses.replace(order, dose=rules.checked_rate(order.dose, concentration))]
    if titration_max is not None:
        top = rules.Quantity(titration_max, order.dose.unit)
        checked.append(dataclasses.replace(order, dose=rules.checked_rate(top, concentration)))
    return checked


def _orders_of(data: OrderCreate) -> list[rules.Order]:
    """The orders the checks judge for `data` (see `_checked`); malformed input is OrderInvalid."""
    try:
        order = _rule_order(data.product_code, data.dose_value, data.dose_unit, data.route, data.frequency,
                            data.times_per_day, data.every_hours, data.max_per_24h)
        concentration = _concentration(data.concentration_value, data.concentration_unit)
        rules.check_infusion(order.dose, order.frequency, concentration, data.titration_min, data.titration_max)
    except rules.MedicationRuleError as exc:
        raise OrderInvalid(str(exc), rule=type(exc).__name__) from exc
    if order.frequency.kind is rules.FrequencyKind.IF_NEEDED and not (data.indication or "").strip():
        raise OrderInvalid("an 'if needed' order states its indication", rule="IndicationRequired")
    return _checked(order, concentration, data.titration_max)


def _order_of(data: OrderCreate) -> rules.Order:
    return _orders_of(data)[0]


def _row_orders(row: MedicationOrder) -> list[rules.Order]:
    order = _rule_order(row.product_code, row.dose_value, row.dose_unit, row.route, row.frequency,
                        row.times_per_day, row.every_hours, row.max_per_24h)
    return _checked(order, _concentration(row.concentration_value, row.concentration_unit), row.titration_max)


def rule_order_of(row: MedicationOrder) -> rules.Order:
    """An order in force as the checks count it (a pump rate as an amount per hour)."""
    return _row_orders(row)[0]


def _age_years(birth: date, now: datetime) -> float:
    return max(0.0, (now.date() - birth).days / 365.25)


def _context(session: Session, patient_id: uuid.UUID, now: datetime, *, weight: float | None,
             height: float | None, pregnant: bool | None, exclude: uuid.UUID | None = None) -> rules.PatientContext:
    """What the checks know of the patient: identity, the weight and height stated on the order or
    else the latest measured, active allergies, the orders being given, and the creatinine
    clearance (Cockcroft-Gault) from the latest serum creatinine of the chart when it is recent
    (rules.CREATININE_VALID_DAYS); an older one is said by the renal check."""
    person = identity.summaries(session, [patient_id])[patient_id]
    sex = {"F": rules.Sex.FEMALE, "M": rules.Sex.MALE}.get(person.sex, rules.Sex.UNKNOWN)
    active = session.scalars(select(MedicationOrder).where(
        MedicationOrder.patient_id == patient_id, MedicationOrder.status == ACTIVE))
    age = _age_years(person.birth_date, now)
    weight = weight if weight is not None else chart.latest_measure(session, patient_id, "weight")
    clearance = days_old = None
    creatinine = chart.latest_lab_result(session, patient_id, "creatinine")
    try:
        if creatinine is not None:
            days = max(0.0, (now - creatinine[1]).total_seconds() / 86400)
            clearance = rules.clearance_from_creatinine(age, weight, sex, creatinine[0], days)
            days_old = days if days > rules.CREATININE_VALID_DAYS else None
        return rules.PatientContext(
            age_years=age, weight_kg=weight,
            height_cm=height if height is not None else chart.latest_measure(session, patient_id, "height"),
            sex=sex, pregnant=pregnant, allergies=chart.active_allergy_codes(session, patient_id),
            active_orders=tuple(rule_order_of(r) for r in active if r.id != exclude),
            creatinine_clearance_ml_min=clearance, creatinine_days_old=days_old)
    except rules.MedicationRuleError as exc:
        raise OrderInvalid(str(exc), rule=type(exc).__name__) from exc


def _alert_json(alert: rules.Alert) -> dict[str, Any]:
    return {"kind": alert.kind.value, "severity": alert.severity.value, "message": alert.text(i18n._),
            "params": dict(alert.params), "substance": alert.substance}


def _check(session: Session, orders: Iterable[rules.Order], context: rules.PatientContext) -> list[rules.Alert]:
    """The alerts of the orders judged together for one signature (an infusion's rate and the top
    of its titration range), each alert once, most severe first."""
    found: list[rules.Alert] = []
    try:
        for order in orders:
            found += [a for a in rules.check_order(order, context, catalogue(session)) if a not in found]
    except rules.MedicationRuleError as exc:
        raise OrderInvalid(str(exc), rule=type(exc).__name__) from exc
    severities = list(rules.Severity)
    return sorted(found, key=lambda a: severities.index(a.severity))


def _unsigned(alerts: list[rules.Alert], reason: str | None) -> rules.Severity | None:
    """The severity that refuses the signature (blocking, or override_required without a reason)."""
    try:
        rules.overridden_alerts(alerts, reason)
    except rules.OrderBlocked:
        return rules.Severity.BLOCKING
    except rules.OverrideReasonRequired:
        return rules.Severity.OVERRIDE_REQUIRED
    return None


def _refuse(session: Session, actor: Actor, patient_id: uuid.UUID, refusal: DomainError, *, now: datetime,
            action: str, products: list[str], alerts: list[rules.Alert]) -> None:
    """Audit a refused signature (committed alone: nothing else was written) and raise it."""
    audit.record(session, actor, "medication:order:refused", at=now, patient_id=patient_id,
                 details={"action": action, "product": ", ".join(products), "status": refusal.status,
                          "alerts": [{"kind": a.kind.value, "severity": a.severity.value} for a in alerts]})
    session.commit()  # the refused attempt stays in the trail
    raise refusal


def _judge(session: Session, actor: Actor, patient_id: uuid.UUID, orders: list[rules.Order],
           context: rules.PatientContext, reason: str | None, *, now: datetime, action: str) -> list[rules.Alert]:
    """Run the checks; a refusal is audited (committed alone) and raised with the alerts listed."""
    alerts = _check(session, orders, context)
    refused = _unsigned(alerts, reason)
    if refused is rules.Severity.BLOCKING:
        blocking = [_alert_json(a) for a in alerts if a.severity is rules.Severity.BLOCKING]
        _refuse(session, actor, patient_id, OrderBlocked("a blocking alert stands: the order cannot be signed",
                                                         alerts=blocking),
                now=now, action=action, products=[orders[0].product], alerts=alerts)
    if refused is rules.Severity.OVERRIDE_REQUIRED:
        needing = [_alert_json(a) for a in alerts if a.severity is rules.Severity.OVERRIDE_REQUIRED]
        _refuse(session, actor, patient_id, OverrideReasonRequired("these alerts need a reason (override_reason)",
                                                                   alerts=needing),
                now=now, action=action, products=[orders[0].product], alerts=alerts)
    return alerts


def _save(session: Session, actor: Actor, patient_id: uuid.UUID, data: OrderCreate, context: rules.PatientContext,
          alerts: Iterable[rules.Alert], *, now: datetime, encounter_id: uuid.UUID | None,
          replaces: MedicationOrder | None = None, protocol: tuple[str, uuid.UUID] | None = None) -> MedicationOrder:
    reason = (data.override_reason or "").strip() or None
    starts = data.starts_at or now
    row = MedicationOrder(
        id=uuid.uuid4(), patient_id=patient_id, encounter_id=encounter_id,
        replaces_id=replaces.id if replaces else None, version=replaces.version + 1 if replaces else 1,
        status=ACTIVE, review_status=REVIEW_PENDING, product_code=data.product_code, dose_value=data.dose_value,
        dose_unit=data.dose_unit, route=data.route, frequency=str(data.frequency),
        times_per_day=data.times_per_day, every_hours=data.every_hours, max_per_24h=data.max_per_24h,
        indication=(data.indication or "").strip() or None, starts_at=starts,
        ends_at=starts + timedelta(days=data.duration_days) if data.duration_days else None,
        comment=(data.comment or "").strip() or None, weight_kg=context.weight_kg, height_cm=context.height_cm,
        pregnant=context.pregnant, override_reason=reason, prescriber_id=actor.account_id,
        prescriber_label=actor.label, created_at=now, concentration_value=data.concentration_value,
        concentration_unit=(data.concentration_unit or "").strip() or None, titration_min=data.titration_min,
        titration_max=data.titration_max, protocol_code=protocol[0] if protocol else None,
        protocol_run_id=protocol[1] if protocol else None, at_discharge=replaces.at_discharge if replaces else None)
    session.add(row)
    session.flush()
    listed = list(alerts)
    session.add_all(MedicationOrderAlert(
        order_id=row.id, patient_id=patient_id, kind=a.kind.value, severity=a.severity.value, message=a.message,
        params=dict(a.params), substance=a.substance,
        override_reason=reason if a.severity is rules.Severity.OVERRIDE_REQUIRED else None) for a in listed)
    overridden = [a.kind.value for a in listed if a.severity is rules.Severity.OVERRIDE_REQUIRED]
    audit.record(session, actor, "medication:order:sign", at=now, patient_id=patient_id, target=str(row.id),
                 reason=reason if overridden else None,
                 details={"product": row.product_code, "version": row.version,
                          "replaces": str(replaces.id) if replaces else None, "overridden": overridden,
                          "protocol": protocol[0] if protocol else None,
                          "weight_kg": row.weight_kg, "height_cm": row.height_cm})
    return row


def review_public(row: PharmacistReview) -> PharmacistReviewPublic:
    return PharmacistReviewPublic(
        decision=row.decision, problem_code=row.problem_code,
        problem_label=(i18n._(review_rules.PROBLEMS[row.problem_code])
                       if row.problem_code in review_rules.PROBLEMS else None),
        intervention_code=row.intervention_code,
        intervention_label=(i18n._(review_rules.INTERVENTIONS[row.intervention_code])
                            if row.intervention_code in review_rules.INTERVENTIONS else None),
        comment=row.comment, pharmacist=row.pharmacist_label, at=row.decided_at,
        prescriber_response=row.response)


def latest_reviews(session: Session, order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PharmacistReviewPublic]:
    """The pharmacist's review of each of these order versions that has one (the caller went
    through the door): the order list shows the comment and intervention to the prescriber."""
    wanted = set(order_ids)
    if not wanted:
        return {}
    rows = session.scalars(select(PharmacistReview).where(PharmacistReview.order_id.in_(wanted))
                           .order_by(PharmacistReview.decided_at))
    return {row.order_id: review_public(row) for row in rows}


def public_orders(session: Session, rows: list[MedicationOrder]) -> list[OrderPublic]:
    """The orders as pages and the API show them: product names, alerts in the reader's language,
    the pharmacist's latest review (the caller went through the door)."""
    if not rows:
        return []
    codes = {r.product_code for r in rows}
    names = {code: name for code, name in session.execute(
        select(FormularyProduct.code, FormularyProduct.name).where(FormularyProduct.code.in_(codes)))}
    reviews = latest_reviews(session, [r.id for r in rows])
    alerts: dict[uuid.UUID, list[AlertPublic]] = {}
    for a in session.scalars(select(MedicationOrderAlert).where(
            MedicationOrderAlert.order_id.in_([r.id for r in rows]))):
        alerts.setdefault(a.order_id, []).append(AlertPublic(
            kind=a.kind, severity=a.severity, message=i18n._(a.message).format(**a.params), params=a.params,
            substance=a.substance, override_reason=a.override_reason))
    return [OrderPublic(
        id=r.id, patient_id=r.patient_id, encounter_id=r.encounter_id, replaces_id=r.replaces_id, version=r.version,
        status=r.status, review_status=r.review_status, product_code=r.product_code,
        product_name=names.get(r.product_code, r.product_code), dose_value=r.dose_value, dose_unit=r.dose_unit,
        route=r.route, frequency=r.frequency, times_per_day=r.times_per_day, every_hours=r.every_hours,
        max_per_24h=r.max_per_24h, indication=r.indication, starts_at=r.starts_at, ends_at=r.ends_at,
        comment=r.comment, weight_kg=r.weight_kg, height_cm=r.height_cm, override_reason=r.override_reason,
        prescriber=r.prescriber_label, created_at=r.created_at, status_changed_at=r.status_changed_at,
        status_reason=r.status_reason, alerts=alerts.get(r.id, []), concentration_value=r.concentration_value,
        concentration_unit=r.concentration_unit, titration_min=r.titration_min, titration_max=r.titration_max,
        rate_ml_h=_rate_ml_h(r), protocol_code=r.protocol_code, protocol_run_id=r.protocol_run_id,
        at_discharge=r.at_discharge,
        pharmacist_review=reviews.get(r.id)) for r in rows]


def _rate_ml_h(row: MedicationOrder) -> float | None:
    """The pump rate of an infusion whose concentration is known (None if it cannot be computed)."""
    if row.frequency != rules.FrequencyKind.CONTINUOUS or row.concentration_value is None:
        return None
    try:
        concentration = _concentration(row.concentration_value, row.concentration_unit)
        assert concentration is not None
        return round(rules.infusion_ml_per_hour(rules.Quantity(row.dose_value, row.dose_unit), concentration,
                                                row.weight_kg), 2)
    except rules.MedicationRuleError:
        return None


def prescribe(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: OrderCreate,
              port: CareRelationshipPort) -> OrderPublic:
    """Sign a new medication order after the safety checks (physicians of the care team)."""
    _require_prescriber(actor)
    orders = _orders_of(data)
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action="medication:order:create")
        row = _sign(s, actor, patient_id, data, orders, now=now, action="medication:order:create")
        public = public_orders(s, [row])[0]
        uow.commit()
        return public


def _concentration_fits(s: Session, data: OrderCreate) -> None:
    try:
        product = catalogue(s).product(data.product_code)
        rules.check_concentration_fits(product, _concentration(data.concentration_value, data.concentration_unit))
    except rules.MedicationRuleError as exc:
        raise OrderInvalid(str(exc), rule=type(exc).__name__) from exc


def _sign(s: Session, actor: Actor, patient_id: uuid.UUID, data: OrderCreate, orders: list[rules.Order], *,
          now: datetime, action: str) -> MedicationOrder:
    """Check and save a new order in the caller's transaction (the caller went through the door)."""
    _concentration_fits(s, data)
    _lock_patient(s, patient_id)
    context = _context(s, patient_id, now, weight=data.weight_kg, height=data.height_cm, pregnant=data.pregnant)
    alerts = _judge(s, actor, patient_id, orders, context, data.override_reason, now=now, action=action)
    return _save(s, actor, patient_id, data, context, alerts, now=now,
                 encounter_id=chart.current_encounter(s, patient_id))


def open_order(s: Session, actor: Actor, order_id: uuid.UUID, port: CareRelationshipPort, now: datetime,
                action: str) -> MedicationOrder:
    """An order through the door of its patient: the same 404 for absent and forbidden."""
    row = s.get(MedicationOrder, order_id)
    if row is None:
        raise OrderNotFound("no such order")
    try:
        access_patient(s, actor, row.patient_id, Purpose.CARE, now=now, port=port, action=action,
                       target=str(order_id))
    except PatientNotFound:
        raise OrderNotFound("no such order") from None  # the refusal is audited; the answer says no more
    return row


def _mark(s: Session, row: MedicationOrder, from_statuses: tuple[str, ...], status: str, actor: Actor,
          now: datetime, reason: str | None) -> None:
    """Change the status if the row is still in one of `from_statuses` (a conditional update:
    two prescribers acting on one order at once cannot both succeed)."""
    done = s.execute(update(MedicationOrder).where(
        MedicationOrder.id == row.id, MedicationOrder.status.in_(from_statuses)).values(
        status=status, status_changed_at=now, status_changed_by=actor.label,
        status_reason=(reason or "").strip() or None).execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise OrderNotInForce(f"the order is not {' or '.join(from_statuses)}")
    s.refresh(row)


def modify(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, data: OrderCreate,
           port: CareRelationshipPort) -> OrderPublic:
    """A new version of an order in force, checked against the patient's other active orders; the
    old version is kept as `replaced` and the new one waits for the pharmacist's analysis."""
    _require_prescriber(actor)
    orders = _orders_of(data)
    with uow:
        s, now = uow.session, uow.clock.now()
        old = open_order(s, actor, order_id, port, now, "medication:order:modify")
        _concentration_fits(s, data)
        _lock_patient(s, old.patient_id)
        s.refresh(old)
        if old.status not in IN_FORCE:
            raise OrderNotInForce("only an order in force is modified")
        patient_id, encounter_id = old.patient_id, old.encounter_id
        context = _context(s, patient_id, now, weight=data.weight_kg, height=data.height_cm,
                           pregnant=data.pregnant, exclude=old.id)
        alerts = _judge(s, actor, patient_id, orders, context, data.override_reason, now=now,
                        action="medication:order:modify")
        _mark(s, old, IN_FORCE, REPLACED, actor, now, None)
        row = _save(s, actor, patient_id, data, context, alerts, now=now, encounter_id=encounter_id, replaces=old)
        public = public_orders(s, [row])[0]
        uow.commit()
        return public


def _change(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, change: StatusChange, port: CareRelationshipPort,
            from_statuses: tuple[str, ...], status: str, action: str,
            before: Callable[[Session, MedicationOrder, datetime], None] | None = None) -> OrderPublic:
    _require_prescriber(actor)
    with uow:
        s, now = uow.session, uow.clock.now()
        row = open_order(s, actor, order_id, port, now, action)
        if row.status not in from_statuses:
            raise OrderNotInForce(f"the order is {row.status}")
        if before:
            before(s, row, now)
        _mark(s, row, from_statuses, status, actor, now, change.reason)
        # the door traced the request (`action`); this traces what was done, with the reason
        audit.record(s, actor, _DONE[status], at=now, patient_id=row.patient_id,
                     target=str(row.id), reason=(change.reason or "").strip() or None, details={"status": status})
        public = public_orders(s, [row])[0]
        uow.commit()
        return public


def suspend(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, change: StatusChange,
            port: CareRelationshipPort) -> OrderPublic:
    """Hold an active order (not given until resumed)."""
    return _change(uow, actor, order_id, change, port, (ACTIVE,), SUSPENDED, "medication:order:suspend")


def resume(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, change: StatusChange,
           port: CareRelationshipPort) -> OrderPublic:
    """Give a suspended order again, after the checks are run again against the orders now active
    (with the weight and height it was signed with)."""
    def recheck(s: Session, row: MedicationOrder, now: datetime) -> None:
        _lock_patient(s, row.patient_id)
        s.refresh(row)
        context = _context(s, row.patient_id, now, weight=row.weight_kg, height=row.height_cm,
                           pregnant=row.pregnant, exclude=row.id)
        alerts = _judge(s, actor, row.patient_id, _row_orders(row), context, change.override_reason, now=now,
                        action="medication:order:resume")
        overridden = [a.kind.value for a in alerts if a.severity is rules.Severity.OVERRIDE_REQUIRED]
        if overridden:  # the reason given on resuming is traced like one given on signing
            audit.record(s, actor, "medication:order:override", at=now, patient_id=row.patient_id,
                         target=str(row.id), reason=(change.override_reason or "").strip(),
                         details={"action": "resume", "overridden": overridden})
    return _change(uow, actor, order_id, change, port, (SUSPENDED,), ACTIVE, "medication:order:resume", recheck)


def stop(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, change: StatusChange,
         port: CareRelationshipPort) -> OrderPublic:
    """End an order in force."""
    return _change(uow, actor, order_id, change, port, IN_FORCE, STOPPED, "medication:order:stop")


#: What the prescriber may say of an order at discharge (medication reconciliation).
AT_DISCHARGE = frozenset({"continue", "stop"})


def decide_at_discharge(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, decision: str | None,
                        port: CareRelationshipPort) -> OrderPublic:
    """Say whether an order in force goes on after discharge (`continue`) or ends with the stay
    (`stop`); None withdraws the word. Physicians of the care team; audited."""
    _require_prescriber(actor)
    if decision is not None and decision not in AT_DISCHARGE:
        raise OrderInvalid("the decision at discharge is continue or stop", rule="BadDischargeDecision")
    with uow:
        s, now = uow.session, uow.clock.now()
        row = open_order(s, actor, order_id, port, now, "medication:order:discharge-decision")
        if row.status not in IN_FORCE:
            raise OrderNotInForce(f"the order is {row.status}")
        row.at_discharge = decision
        audit.record(s, actor, "medication:order:at-discharge", at=now, patient_id=row.patient_id,
                     target=str(row.id), details={"at_discharge": decision})
        public = public_orders(s, [row])[0]
        uow.commit()
        return public


def stop_all_at_discharge(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID) -> int:
    """Stop the orders in force of a stay when the patient is discharged; how many were stopped.
    Not a user's request: the record's discharge event calls it, so no door (audited)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        rows = list(s.scalars(select(MedicationOrder).where(
            MedicationOrder.encounter_id == encounter_id, MedicationOrder.status.in_(IN_FORCE))))
        for row in rows:
            row.status, row.status_changed_at, row.status_changed_by = STOPPED, now, actor.label
            row.status_reason = "discharge"
            audit.record(s, actor, _DONE[STOPPED], at=now, patient_id=row.patient_id,
                         target=str(row.id), reason="discharge",
                         details={"status": STOPPED, "encounter_id": str(encounter_id)})
        uow.commit()
        return len(rows)


def active_orders(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort, *,
                  history: bool = False) -> list[OrderPublic]:
    """The patient's orders in force (active and suspended), or every version with `history`, for
    the care team (physicians, nurses, pharmacists)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action="medication:order:view")
        query = select(MedicationOrder).where(MedicationOrder.patient_id == patient_id)
        if not history:
            query = query.where(MedicationOrder.status.in_(IN_FORCE))
        rows = list(s.scalars(query.order_by(MedicationOrder.created_at, MedicationOrder.version)))
        public = public_orders(s, rows)
        uow.commit()
        return public


@dataclasses.dataclass(frozen=True)
class PrescriptionSheet:
    """What the prescriptions page shows: the patient, the orders in force, every version, and the
    measures the checks use (weight, height, latest creatinine and the clearance it gives)."""

    patient: Any  # identity.PatientPublic
    orders: list[OrderPublic]
    history: list[OrderPublic]
    weight_kg: float | None
    height_cm: float | None
    creatinine: tuple[float, datetime] | None
    clearance_ml_min: float | None


def prescription_sheet(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
                       port: CareRelationshipPort) -> PrescriptionSheet:
    """The patient's prescriptions for the care team (physicians, nurses, pharmacists)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action="medication:order:view")
        rows = list(s.scalars(select(MedicationOrder).where(MedicationOrder.patient_id == patient_id)
                              .order_by(MedicationOrder.created_at.desc(), MedicationOrder.version.desc())))
        history = public_orders(s, rows)
        context = _context(s, patient_id, now, weight=None, height=None, pregnant=None)
        sheet = PrescriptionSheet(
            patient=identity.summaries(s, [patient_id])[patient_id],
            orders=sorted((o for o in history if o.status in IN_FORCE), key=lambda o: o.created_at),
            history=history, weight_kg=context.weight_kg, height_cm=context.height_cm,
            creatinine=chart.latest_lab_result(s, patient_id, "creatinine"),
            clearance_ml_min=context.creatinine_clearance_ml_min)
        uow.commit()
        return sheet


def ensure_formulary(uow: UnitOfWork, actor: Actor, path: Path = FORMULARY) -> ImportReport | None:
    """Import the file unless it is the one last imported (same SHA-256): the seed and the demo
    call it at each start; None when nothing was to do."""
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    with uow:
        s = uow.session
        latest = s.execute(select(FormularyImport.sha256).order_by(FormularyImport.number.desc()).limit(1)
                           ).scalar_one_or_none()
        if latest == sha256:
            return None
        report = import_formulary(s, actor, path, now=uow.clock.now())
        uow.commit()
        return report


def stop_orders_on_discharge(make_uow: Callable[[], UnitOfWork]) -> Callable[[Any], None]:
    """The handler of the record's `PatientMoved` event: a discharge stops the stay's orders.
    It runs after the discharge committed, in its own transaction (platform.events)."""
    def handle(event: Any) -> None:
        if event.kind == "discharge":
            stop_all_at_discharge(make_uow(), SYSTEM_ACTOR, event.encounter_id)
    return handle


class MedicationDataMover:
    """Medication orders (with their alerts) follow a merged patient, and come back on undo
    (identity.service.PatientDataMover). Moved rows are named "medication_order:<id>"."""

    name = "medication"

    def move(self, session: Session, from_id: uuid.UUID, to_id: uuid.UUID) -> list[str]:
        ids = list(session.scalars(select(MedicationOrder.id).where(MedicationOrder.patient_id == from_id)))
        self._point(session, ids, to_id)
        return [f"{MedicationOrder.__tablename__}:{i}" for i in ids]

    def move_back(self, session: Session, row_ids: list[str], to_id: uuid.UUID) -> None:
        prefix = f"{MedicationOrder.__tablename__}:"
        self._point(session, [uuid.UUID(r[len(prefix):]) for r in row_ids if r.startswith(prefix)], to_id)

    def _point(self, session: Session, ids: list[uuid.UUID], to_id: uuid.UUID) -> None:
        if ids:
            session.execute(update(MedicationOrder).where(MedicationOrder.id.in_(ids)).values(patient_id=to_id))
            session.execute(update(MedicationOrderAlert).where(MedicationOrderAlert.order_id.in_(ids))
                            .values(patient_id=to_id))


MOVER = MedicationDataMover()


# --- protocols (order sets) --------------------------------------------------------------------------


class ProtocolNotFound(NotFound):
    """No protocol of this code."""


_PROTOCOLS: list[tuple[rules.Catalogue, dict[str, Protocol]]] = []


def protocols(session: Session) -> dict[str, Protocol]:
    """The shipped protocols, validated against the formulary in force (once per import): a
    protocol naming a withdrawn product refuses the file (protocols.ProtocolError)."""
    cat = catalogue(session)
    if not _PROTOCOLS or _PROTOCOLS[0][0] is not cat:
        _PROTOCOLS[:] = [(cat, load_protocols(cat))]
    return _PROTOCOLS[0][1]


def _line_create(line: ProtocolLine, data: ProtocolApply, reason: str | None) -> OrderCreate:
    return OrderCreate(
        product_code=line.product, dose_value=line.dose.value, dose_unit=line.dose.unit, route=line.route,
        frequency=line.frequency.kind, times_per_day=line.frequency.times_per_day,
        every_hours=line.frequency.every_hours, max_per_24h=line.frequency.max_per_24h, indication=line.indication,
        duration_days=line.duration_days, comment=line.comment, weight_kg=data.weight_kg, height_cm=data.height_cm,
        pregnant=data.pregnant, override_reason=reason)


def list_protocols(uow: UnitOfWork) -> list[ProtocolPublic]:
    """The protocols a prescriber may apply, with their lines (no patient data)."""
    with uow:
        s = uow.session
        found = protocols(s)
        names = {code: name for code, name in s.execute(select(FormularyProduct.code, FormularyProduct.name))}
        return [ProtocolPublic(code=p.code, name=p.name, description=p.description, source=p.source, lines=[
            ProtocolLinePublic(product_code=line.product, product_name=names.get(line.product, line.product),
                               dose_value=line.dose.value, dose_unit=line.dose.unit, route=line.route,
                               frequency=line.frequency.kind.value, times_per_day=line.frequency.times_per_day,
                               every_hours=line.frequency.every_hours, max_per_24h=line.frequency.max_per_24h,
                               indication=line.indication, duration_days=line.duration_days, comment=line.comment)
            for line in p.lines]) for p in found.values()]


def apply_protocol(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, code: str, data: ProtocolApply,
                   port: CareRelationshipPort) -> list[OrderPublic]:
    """Sign every line of a protocol as one order, all or nothing.

    Each line is checked against the patient (orders in force, allergies, clearance...) and the
    protocol's other lines, as if they were already active: interactions, duplicates and daily
    doses between lines are seen. One blocked line refuses the protocol (422); lines whose alerts
    need a reason not given in `override_reasons` refuse it too (409), every such line listed
    with its alerts (`lines`), so the prescriber answers them all at once.
    """
    _require_prescriber(actor)
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action="medication:protocol:apply",
                       target=code)
        protocol = protocols(s).get(code)
        if protocol is None:
            raise ProtocolNotFound(f"no protocol {code!r}")
        lines = [_line_create(line, data, data.override_reasons.get(n)) for n, line in enumerate(protocol.lines)]
        checks = [_orders_of(line) for line in lines]
        _lock_patient(s, patient_id)
        context = _context(s, patient_id, now, weight=data.weight_kg, height=data.height_cm, pregnant=data.pregnant)
        judged: list[list[rules.Alert]] = []
        refused: list[dict[str, Any]] = []
        worst: rules.Severity | None = None
        for n, line in enumerate(lines):
            others = tuple(c[0] for m, c in enumerate(checks) if m != n)
            alerts = _check(s, checks[n], dataclasses.replace(context, active_orders=context.active_orders + others))
            judged.append(alerts)
            severity = _unsigned(alerts, line.override_reason)
            if severity is not None:
                refused.append({"line": n, "product": line.product_code, "severity": severity.value,
                                "alerts": [_alert_json(a) for a in alerts if a.severity is severity]})
                worst = rules.Severity.BLOCKING if rules.Severity.BLOCKING in (worst, severity) else severity
        if refused:
            error: DomainError = (
                OrderBlocked("a blocking alert stands on a line: the protocol cannot be applied", lines=refused)
                if worst is rules.Severity.BLOCKING else
                OverrideReasonRequired("lines of the protocol need a reason (override_reasons)", lines=refused))
            _refuse(s, actor, patient_id, error, now=now, action="medication:protocol:apply",
                    products=[line.product_code for line in lines], alerts=[a for alerts in judged for a in alerts])
        run, encounter = uuid.uuid4(), chart.current_encounter(s, patient_id)
        rows = [_save(s, actor, patient_id, line, context, alerts, now=now, encounter_id=encounter,
                      protocol=(code, run)) for line, alerts in zip(lines, judged, strict=True)]
        audit.record(s, actor, "medication:protocol:applied", at=now, patient_id=patient_id, target=str(run),
                     details={"protocol": code, "orders": [str(r.id) for r in rows]})
        public = public_orders(s, rows)
        uow.commit()
        return public
