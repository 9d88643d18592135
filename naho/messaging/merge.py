"""When identity vigilance merges two records of one person, the merged record's correspondents,
letters and objections to sharing follow the survivor, and come back on undo
(platform.merge.TableMover). Moved rows are named "<table>:<id>"."""

from __future__ import annotations

from naho.messaging.models import Correspondent, Letter, SharingObjection
from naho.platform.merge import TableMover

MOVER = TableMover("messaging", (Correspondent, Letter, SharingObjection))
