"""Transports to other systems: the FHIR R4 facade, HL7 v2 over MLLP. Mapping to and from each
domain lives in the domain (`<domain>/fhir.py`, `<domain>/hl7.py`); here only framing and routing."""
