"""Tables of the medication circuit, one module per step (each step's service owns its module):
`orders` (the formulary as imported, the orders and their alerts), `review` (the pharmacist's
analysis), `administration` (the plan of care as given: doses, infusions), `dispensing`
(nominative dispensing, labels, pharmacy stock)."""

from naho.medication.models.administration import *  # noqa: F403
from naho.medication.models.dispensing import *  # noqa: F403
from naho.medication.models.orders import *  # noqa: F403
from naho.medication.models.reconciliation import *  # noqa: F403
from naho.medication.models.review import *  # noqa: F403
