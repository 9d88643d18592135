"""Laboratory messages and patients for the results tests."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from naho.identity import service as identity
from naho.identity.rules import INS_NIR_OID, IdentityStatus, Traits
from naho.interop.hl7_listener import start_listener
from naho.platform.deps import Container
from naho.record import crossref
from naho.record import service as record
from tests.interop.test_hl7_listener import answer
from tests.interop.test_mllp import ServerThread

__all__ = ["answer"]

#: A tiny but real PDF (the signed report's bytes are filed as they come).
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def obx(n: int, loinc: str, label: str, value: str, unit: str = "", reference: str = "", flags: str = "",
        status: str = "F", value_type: str = "NM", at: str = "", sub: str = "") -> str:
    return "|".join(["OBX", str(n), value_type, f"{loinc}^{label}^LN", sub, value, unit, reference, flags, "", "",
                     status, "", "", at])


def oru(control: str, observations: list[str], *, ipp: str = "", foreign: str = "", ins: str = "", visit: str = "",
        placer: str = "CMD-1", filler: str = "LAB-1", sampled: str = "20261125080000", notes: list[str] = (),
        report_status: str = "F", sender: str = "SIL^LABO") -> str:
    """An ORU^R01 from the laboratory information system (SIL) of the group."""
    ids = "~".join(x for x in (f"{foreign}^^^GAM^PI" if foreign else "", f"{ipp}^^^NAHO^PI" if ipp else "",
                               f"{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS" if ins else "") if x)
    app, facility = sender.split("^")
    segments = [
        f"MSH|^~\\&|{app}|{facility}|NAHO|GHT-ARTOIS|20261125093000||ORU^R01^ORU_R01|{control}|P|2.5"
        "|||||FRA|UNICODE UTF-8",
        f"PID|1||{ids}||DURAND^MARIE^^^^^L||19620314|F",
        "|".join(["PV1", "1", "I", "", *[""] * 15, visit]),
        f"ORC|RE|{placer}|{filler}",
        "|".join(["OBR", "1", placer, filler, "BIOCHIMIE^Biochimie sanguine^L", "", "", sampled, *[""] * 14,
                  "20261125092500", "", "", report_status]),
        *[f"NTE|1|L|{n}" for n in notes],
        *observations,
    ]
    return "\r".join(segments) + "\r"


def pdf_obx(n: int, content: bytes = PDF) -> str:
    data = base64.b64encode(content).decode()
    return "|".join(["OBX", str(n), "ED", "11502-2^Compte rendu de biologie^LN", "", f"SIL^AP^PDF^Base64^{data}",
                     "", "", "", "", "", "F"])


@dataclass(frozen=True)
class Inpatient:
    id: uuid.UUID
    ipp: str
    nda: str
    foreign: str  # the admission system's IPP (GAM), learnt in the cross-reference


@pytest.fixture
def container(app) -> Container:  # type: ignore[no-untyped-def]
    return app.state.container  # type: ignore[no-any-return]


def admit_inpatient(container: Container, name: str = "DURAND", *, unit: str = "LENS-MED-MIN",
                    ins: str | None = None) -> Inpatient:
    """A patient in the internal medicine unit of Lens (the demo physician's and nurse's unit);
    with `ins`, a qualified identity carrying that INS."""
    with container.uow() as uow:
        now = uow.clock.now()
        patient = identity.import_identity(
            uow.session, Traits(birth_name=name, used_name=None, first_names=("MARIE",), sex="F",
                                birth_date=now.date().replace(year=1962), birth_place="62498"),
            status=IdentityStatus.QUALIFIED if ins else IdentityStatus.PROVISIONAL, now=now, actor_label="test",
            ins=(ins, INS_NIR_OID) if ins else None)
        stay = record.import_stay(uow.session, patient, establishment_code="LENS", encounter_class="inpatient",
                                  unit_code=unit, bed_code=None, admitted_at=now - timedelta(hours=5), now=now,
                                  actor_label="test")
        foreign = f"GAM{uuid.uuid4().hex[:8]}"
        crossref.remember_patient(uow.session, "GAM", foreign, patient, now=now, source="test")
        uow.commit()
    with container.uow() as uow:
        public = identity.summaries(uow.session, [patient])[patient]
        nda = record.get_encounter(uow.session, stay).nda
    return Inpatient(patient, public.ipp, nda, foreign)


@pytest.fixture
def lab(container: Container) -> Iterator[ServerThread]:
    """naho's MLLP listener (ADT and ORU on one port) on a free loopback port."""
    server = ServerThread(lambda port: start_listener(container, "127.0.0.1", port))
    yield server
    server.close()
