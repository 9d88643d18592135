"""When identity vigilance merges two records of one person, the merged record's laboratory
reports, every version of their results, their critical value alerts and their release to the
portal follow the survivor, and come back on undo (identity.service.PatientDataMover). Moved
rows are named "<table>:<id>"."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from naho.results.models import LabReport, LabResult, ResultAlert
from naho.results.release_models import ReportRelease

_TABLES: tuple[type[LabReport] | type[LabResult] | type[ResultAlert] | type[ReportRelease], ...] = (
    LabReport, LabResult, ResultAlert, ReportRelease)


class ResultsDataMover:
    name = "results"

    def move(self, session: Session, from_id: uuid.UUID, to_id: uuid.UUID) -> list[str]:
        moved: list[str] = []
        for table in _TABLES:
            ids = list(session.scalars(select(table.id).where(table.patient_id == from_id)))
            self._point(session, table, ids, to_id)
            moved += [f"{table.__tablename__}:{row_id}" for row_id in ids]
        return moved

    def move_back(self, session: Session, row_ids: list[str], to_id: uuid.UUID) -> None:
        for table in _TABLES:
            prefix = f"{table.__tablename__}:"
            self._point(session, table, [uuid.UUID(r[len(prefix):]) for r in row_ids if r.startswith(prefix)], to_id)

    @staticmethod
    def _point(session: Session, table: type[LabReport] | type[LabResult] | type[ResultAlert] | type[ReportRelease],
               ids: list[uuid.UUID], to_id: uuid.UUID) -> None:
        if ids:
            session.execute(update(table).where(table.id.in_(ids)).values(patient_id=to_id))


MOVER = ResultsDataMover()
