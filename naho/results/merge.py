"""When identity vigilance merges two records of one person, the merged record's laboratory
reports, every version of their results, their critical value alerts and their release to the
portal follow the survivor, and come back on undo (platform.merge.TableMover)."""

from __future__ import annotations

from naho.platform.merge import TableMover
from naho.results.models import LabReport, LabResult, ResultAlert
from naho.results.release_models import ReportRelease

MOVER = TableMover("results", (LabReport, LabResult, ResultAlert, ReportRelease))
