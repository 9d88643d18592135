"""Orders loaded from a source system (the demo seed, a migration): the checks of a signed order
still apply; what a check blocks is left out and counted, alerts needing a reason keep one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

from sqlalchemy import select

from naho.identity import rules as identity_rules
from naho.identity import service as identity
from naho.medication.imports import IMPORTED_REASON, ImportedOrder, import_orders
from naho.medication.models import MedicationOrder, MedicationOrderAlert
from naho.medication.schemas import OrderCreate
from naho.platform.uow import UnitOfWork
from naho.record import chart

UowFactory = Callable[[], UnitOfWork]
PRESCRIBER = uuid.UUID(int=7)


def _order(product: str, value: float, unit: str, **more: object) -> OrderCreate:
    return OrderCreate.model_validate({"product_code": product, "dose_value": value, "dose_unit": unit,
                                       "route": "PO", "frequency": "times_per_day", "times_per_day": 3, **more})


def test_blocked_orders_are_left_out_and_reasons_are_kept(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        s, now = uow.session, uow.clock.now()
        traits = identity_rules.Traits("VASSEUR", None, ("ODETTE",), "F", date(1941, 2, 3), "62498")
        patient = identity.import_identity(s, traits, status=identity_rules.IdentityStatus.VALIDATED, now=now,
                                           actor_label="test")
        chart.import_history(s, patient, observations=[("weight", 58.0, now), ("height", 158.0, now)], notes=[],
                             author="test", now=now,
                             allergies=[("ATC:J01C", "Pénicillines", "allergy", "high", "Urticaire")])

        def item(order: OrderCreate, status: str = "validated") -> ImportedOrder:
            return ImportedOrder(patient, None, order, PRESCRIBER, "Anne Caron (acaron)", now, status)

        report = import_orders(s, [
            item(_order("PARA1GCP", 1, "g")),
            item(_order("AMOX1GCP", 1, "g")),  # penicillin allergy: a hard stop
            item(_order("PARA500CP", 500, "mg"), "pending"),  # a second paracetamol: needs a reason
            item(_order("PARA1GCP", 10, "g")),  # ten times the dose: beyond the maximum, blocked
        ], now=now)
        uow.commit()
    assert (report.imported, report.left_out) == (2, 2)
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(MedicationOrder).order_by(MedicationOrder.product_code)))
        alerts = list(uow.session.scalars(select(MedicationOrderAlert)))
        assert [(r.product_code, r.review_status, r.weight_kg, r.override_reason) for r in rows] == [
            ("PARA1GCP", "validated", 58.0, None), ("PARA500CP", "pending", 58.0, IMPORTED_REASON)]
        assert {a.kind for a in alerts if a.override_reason == IMPORTED_REASON} >= {"duplicate"}
