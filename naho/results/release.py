"""Releasing laboratory reports to the patient's portal, by the rules of release_rules.yaml.

`refresh` decides again for some reports in the caller's transaction: when a report receives a
result (receive_results), when a physician marks it seen or records that the patient was told,
and every few minutes for the reports that wait for a delay. A report is released once: its
row's `released_at` is set, and one mail tells the patient a result is available — with no
health data in it (topic mail.result, sent by the portal's mail handler).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.platform import outbox
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import Forbidden, NotFound
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.results import release_rules, rules
from naho.results.models import LabReport, LabResult
from naho.results.release_models import ReportRelease

RELEASE_RULES_FILE = Path(__file__).parent / "data" / "release_rules.yaml"
#: The outbox topic of "a result is available" mails (handled by naho.portal.mail).
RESULT_MAIL_TOPIC = "mail.result"
LABORATORY = "laboratory"
SEEN = "patient:lab-result:seen"
TOLD = "patient:lab-result:told"


class ReportNotFound(NotFound):
    """No such laboratory report (or not one this person may see)."""


def load_release_rules(path: Path = RELEASE_RULES_FILE) -> release_rules.ReleaseRules:
    return release_rules.parse_release_rules(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


@dataclass(frozen=True)
class ReleaseState:
    """How a report stands with the patient, as the staff's results page shows it."""

    report_id: uuid.UUID
    policy: str
    waiting: str | None
    sensitive: bool
    seen_at: datetime | None
    seen_by: str | None
    told_at: datetime | None
    told_by: str | None
    released_at: datetime | None


def _facts(report: LabReport, current: Collection[LabResult], row: ReportRelease,
           now: datetime) -> release_rules.ReportFacts:
    statuses = [rules.ResultStatus(r.status) for r in current]
    withdrawn = bool(statuses) and all(s.withdrawn for s in statuses)
    final = bool(statuses) and all(s.valid or s.withdrawn for s in statuses) and not withdrawn
    if final and row.validated_at is None:
        row.validated_at = now  # when the last preliminary result became final, as naho learnt it
    abnormal = any(rules.is_abnormal(tuple(r.flags.split())) for r in current
                   if rules.ResultStatus(r.status).valid)
    return release_rules.ReportFacts(
        kind=LABORATORY, validated_at=row.validated_at if final else None, withdrawn=withdrawn, abnormal=abnormal,
        codes=frozenset(r.loinc for r in current), service_code=report.service_code,
        seen_at=row.seen_at, told_at=row.told_at)


def _decide(session: Session, report: LabReport, current: Collection[LabResult], row: ReportRelease | None,
            release: release_rules.ReleaseRules, now: datetime, *, changed: bool) -> bool:
    """Decide for one report (its current results given); True when it is released now. The
    release is a system decision kept on its row; people's actions on it are audited by the door."""
    if row is None:
        row = ReportRelease(report_id=report.id, patient_id=report.patient_id, policy="", sensitive=False,
                            updated_at=now)
        session.add(row)
    if changed and row.seen_at is not None:
        row.seen_at = row.seen_by = None
    decision = release_rules.decide(_facts(report, current, row, now), release, now)
    row.policy, row.sensitive, row.updated_at = str(decision.policy), decision.sensitive, now
    row.waiting = str(decision.waiting) if decision.waiting else None
    if row.released_at is not None:
        if decision.released_at is None:
            row.released_at = None  # withdrawn from the portal until its policy is met again
        return False
    if decision.released_at is None:
        return False
    row.released_at = now
    return True


def _notify(session: Session, patient_ids: Collection[uuid.UUID], now: datetime) -> None:
    for patient_id in sorted(set(patient_ids)):  # one mail per patient, however many reports
        outbox.enqueue(session, RESULT_MAIL_TOPIC, {"kind": "result_available", "patient_id": str(patient_id)},
                       now=now)


def refresh(session: Session, report_ids: Collection[uuid.UUID], release: release_rules.ReleaseRules,
            now: datetime, *, notify: bool) -> list[uuid.UUID]:
    """Decide again for these reports (a physician acted, a delay ran out); returns those released now."""
    released: list[LabReport] = []
    for report in session.scalars(select(LabReport).where(LabReport.id.in_(list(report_ids)))):
        row = session.scalars(select(ReportRelease).where(ReportRelease.report_id == report.id)).first()
        current = list(session.scalars(select(LabResult).where(LabResult.report_id == report.id,
                                                               LabResult.current.is_(True))))
        if _decide(session, report, current, row, release, now, changed=False):
            released.append(report)
    if notify:
        _notify(session, [r.patient_id for r in released], now)
    return [r.id for r in released]


def refresh_received(session: Session, received: Collection[tuple[LabReport, Collection[LabResult], bool]],
                     release: release_rules.ReleaseRules, now: datetime, *, notify: bool) -> list[uuid.UUID]:
    """Decide for reports the laboratory just sent results for, with their current results in
    hand (no query for a report first seen). A physician's "seen" was of the earlier results, so
    it no longer counts; a released report whose new results the rules would hold back (a value
    now abnormal) is withdrawn from the portal until its policy is met again."""
    released: list[LabReport] = []
    for report, current, known in received:
        row = session.scalars(select(ReportRelease).where(ReportRelease.report_id == report.id)).first() \
            if known else None
        if _decide(session, report, current, row, release, now, changed=True):
            released.append(report)
    if notify:
        _notify(session, [r.patient_id for r in released], now)
    return [r.id for r in released]


def _mark(uow: UnitOfWork, actor: Actor, report_id: uuid.UUID, port: CareRelationshipPort,
          release: release_rules.ReleaseRules, *, notify: bool, told: bool) -> ReleaseState:
    if not actor.has_any(Role.PHYSICIAN):
        raise Forbidden("only a physician marks a result seen or records that the patient was told")
    with uow:
        s, now = uow.session, uow.clock.now()
        report = s.get(LabReport, report_id)
        if report is None:
            raise ReportNotFound("no such laboratory report", rule="ReportNotFound")
        access_patient(s, actor, report.patient_id, Purpose.CARE, now=now, port=port, action=TOLD if told else SEEN,
                       target=str(report_id))
        refresh(s, [report_id], release, now, notify=notify)  # makes the row when the report has none yet
        row = s.scalars(select(ReportRelease).where(ReportRelease.report_id == report_id)).one()
        if told and row.told_at is None:
            row.told_at, row.told_by = now, actor.label
        if row.seen_at is None:
            row.seen_at, row.seen_by = now, actor.label
        refresh(s, [report_id], release, now, notify=notify)
        state = _state(row)
        uow.commit()
        return state


def mark_seen(uow: UnitOfWork, actor: Actor, report_id: uuid.UUID, port: CareRelationshipPort,
              release: release_rules.ReleaseRules, *, notify: bool) -> ReleaseState:
    """A physician of the patient saw the report (audited); an abnormal one may then be released."""
    return _mark(uow, actor, report_id, port, release, notify=notify, told=False)


def mark_told(uow: UnitOfWork, actor: Actor, report_id: uuid.UUID, port: CareRelationshipPort,
              release: release_rules.ReleaseRules, *, notify: bool) -> ReleaseState:
    """The physician told the patient the result (audited); a sensitive one may then be released."""
    return _mark(uow, actor, report_id, port, release, notify=notify, told=True)


def release_due(uow: UnitOfWork, release: release_rules.ReleaseRules, *, notify: bool) -> int:
    """Release the reports whose delay has run out (the worker runs it every few minutes)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        waiting = list(s.scalars(select(ReportRelease.report_id).where(
            ReportRelease.released_at.is_(None), ReportRelease.waiting == str(release_rules.Waiting.DELAY)).limit(500)))
        released = refresh(s, waiting, release, now, notify=notify) if waiting else []
        uow.commit()
        return len(released)


def _state(row: ReportRelease) -> ReleaseState:
    return ReleaseState(row.report_id, row.policy, row.waiting, row.sensitive, row.seen_at, row.seen_by,
                        row.told_at, row.told_by, row.released_at)


def states_of(session: Session, patient_id: uuid.UUID) -> dict[uuid.UUID, ReleaseState]:
    """Each report's release, for the staff's results page (the caller went through the door)."""
    return {row.report_id: _state(row) for row in session.scalars(
        select(ReportRelease).where(ReportRelease.patient_id == patient_id))}


def released_report_ids(session: Session, patient_id: uuid.UUID) -> list[uuid.UUID]:
    """The reports the patient may see on the portal (the caller went through the portal's door)."""
    return list(session.scalars(select(ReportRelease.report_id).where(
        ReportRelease.patient_id == patient_id, ReportRelease.released_at.is_not(None))))
