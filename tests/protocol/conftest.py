"""Make the repository importable when pytest runs without an installed package.

pyproject's pytest options (owned by the team lead) have no ``pythonpath``; until they do, the
protocol tests put the repository root on sys.path themselves.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
