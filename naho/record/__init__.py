"""The shared patient record: stays and movements (IHE PAM FR), beds, care teams.

`record.service.CARE` implements `platform.access.CareRelationshipPort`; app.py wires it in.
"""
