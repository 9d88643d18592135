"""IT administrators' pages of the platform: outbox dead letters and the audit trail."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from naho.platform import audit, outbox
from naho.platform.audit import AuditEvent, AuditTag
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.web.templating import render

router = APIRouter(prefix="/admin", dependencies=[Depends(requires(Role.IT_ADMIN))], include_in_schema=False)


@router.get("/outbox")
def outbox_page(request: Request, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        dead = s.execute(
            select(outbox.OutboxMessage).where(outbox.OutboxMessage.status == outbox.DEAD)
            .order_by(outbox.OutboxMessage.created_at.desc()).limit(200)
        ).scalars().all()
        counts = outbox.counts(s)
    return render(request, "shell/outbox.html", {"dead": dead, "counts": counts})


@router.post("/outbox/{message_id}/relancer")
def retry(message_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    with container.uow() as uow:
        now = uow.clock.now()
        if outbox.retry_dead(uow.session, message_id, now=now):
            audit.record(uow.session, actor, AuditTag.OUTBOX_RETRIED, at=now, target=str(message_id))
        uow.commit()
    return RedirectResponse("/admin/outbox", status_code=303)


@router.get("/audit")
def audit_page(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    with container.uow() as uow:
        rows = uow.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(200)).scalars().all()
        audit.record(uow.session, actor, AuditTag.AUDIT_VIEWED, at=uow.clock.now())
        uow.commit()
    return render(request, "shell/audit.html", {"events": rows})
