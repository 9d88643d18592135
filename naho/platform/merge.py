"""A patient data mover for tables whose rows simply carry `patient_id`: when identity vigilance
merges two records of one person, the merged record's rows follow the survivor, and come back on
undo (identity.service.PatientDataMover). Moved rows are named "<table>:<id>"."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session


class TableMover:
    def __init__(self, name: str, tables: Sequence[Any]) -> None:
        self.name = name
        self.tables = tuple(tables)  # mapped classes with `id` and `patient_id`

    def move(self, session: Session, from_id: uuid.UUID, to_id: uuid.UUID) -> list[str]:
        moved: list[str] = []
        for table in self.tables:
            ids = list(session.scalars(select(table.id).where(table.patient_id == from_id)))
            self._point(session, table, ids, to_id)
            moved += [f"{table.__tablename__}:{row_id}" for row_id in ids]
        return moved

    def move_back(self, session: Session, row_ids: list[str], to_id: uuid.UUID) -> None:
        for table in self.tables:
            prefix = f"{table.__tablename__}:"
            self._point(session, table, [uuid.UUID(r[len(prefix):]) for r in row_ids if r.startswith(prefix)], to_id)

    @staticmethod
    def _point(session: Session, table: Any, ids: list[uuid.UUID], to_id: uuid.UUID) -> None:
        if ids:
            session.execute(update(table).where(table.id.in_(ids)).values(patient_id=to_id))
