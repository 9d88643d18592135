"""naho's laboratory orders out as HL7 v2.5 OML^O21 (IHE LTW, LAB-1 "placer order management"):
an outbox snapshot (results.orders) → message text. Pure: no database, no clock, no socket;
naho/interop/lab_sender.py sends it over MLLP and reads the acknowledgement.

Message: MSH, PID (as naho's ADT writes it: IPP under our authority, INS once qualified), PV1
(class, unit, the NDA in PV1-19), then one order: ORC (ORC-1 NW or CA, ORC-2 the placer number,
ORC-4 the group, ORC-12 who ordered), TQ1 (TQ1-9 priority S / A / R), OBR (OBR-2 placer number,
OBR-4 the laboratory's code with the LOINC as alternate, OBR-7 when collected, OBR-13 the
clinical information) and SPM (SPM-2 the specimen number of the label, SPM-4 its type, table
0487, SPM-17 when collected, SPM-27 the container). Why OML^O21 and not ORM^O01: ADR 0015.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from naho.record import hl7 as adt
from naho.record import rules as record_rules
from naho.results.order_rules import Urgency

_SPECIMEN_TYPES = {"BLD": "Whole blood", "PLAS": "Plasma", "SER": "Serum", "UR": "Urine"}


def _ts(value: str | None, zone: tzinfo) -> str:
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y%m%d%H%M%S%z") if value else ""


def build_oml(snapshot: dict[str, Any], *, control_id: str, sending_application: str, sending_facility: str,
              now: datetime, zone: tzinfo, receiving_application: str = "", receiving_facility: str = "") -> str:
    """The OML^O21 of one order's message (`snapshot["action"]` NW or CA)."""
    e = adt.escape
    authority = sending_application
    placer = f"{e(snapshot['placer_number'])}^{e(authority)}"
    collected = _ts(snapshot.get("collected_at"), zone)
    msh = ["MSH", "^~\\&", e(sending_application), e(sending_facility), e(receiving_application),
           e(receiving_facility), now.astimezone(zone).strftime("%Y%m%d%H%M%S%z"), "", "OML^O21^OML_O21",
           e(control_id), "P", "2.5", "", "", "", "", "FRA", "UNICODE UTF-8"]
    pv1 = ["PV1", "1", record_rules.pv1_class(record_rules.EncounterClass(snapshot["encounter_class"])),
           e(snapshot.get("unit_code") or ""), *[""] * 15, f"{e(snapshot['nda'])}^^^{e(authority)}^AN"]
    orc = ["ORC", e(snapshot["action"]), placer, "", f"{e(snapshot['group_number'])}^{e(authority)}", "", "", "",
           "", _ts(snapshot["ordered_at"], zone), "", "", f"^{e(snapshot['ordered_by'])}"]
    tq1 = ["TQ1", "1", *[""] * 7, Urgency(snapshot["urgency"]).hl7]
    service = f"{e(snapshot['test_code'])}^{e(snapshot['test_label'])}^L"
    if snapshot.get("loinc"):
        service += f"^{e(snapshot['loinc'])}^{e(snapshot['test_label'])}^LN"
    obr = ["OBR", "1", placer, "", service, "", "", collected, *[""] * 5, e(snapshot.get("clinical_info") or ""),
           "", "", f"^{e(snapshot['ordered_by'])}"]
    kind = str(snapshot["specimen_type"])
    spm = ["SPM", "1", f"{e(snapshot['specimen_number'])}&{e(authority)}", "",
           f"{e(kind)}^{_SPECIMEN_TYPES.get(kind, kind)}^HL70487", *[""] * 12, collected, *[""] * 9,
           f"^{e(snapshot['container_label'])}"]
    segments = ["|".join(msh), adt._pid(snapshot["patient"], authority), "|".join(pv1), "|".join(orc), "|".join(tq1),
                "|".join(obr).rstrip("|"), "|".join(spm)]
    return "\r".join(segments) + "\r"
