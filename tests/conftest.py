import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(__file__).resolve().parent / "vectors"


def firmware_on_cpython():
    """Make firmware modules importable on CPython (unit tests only)."""
    for p in (ROOT / "tests" / "shims", ROOT / "firmware"):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
