import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Generated cases are checked for what they produce, not how fast: a loaded
# machine must not turn a slow example into a failure.
settings.register_profile("amanat", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("amanat")

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(__file__).resolve().parent / "vectors"


def firmware_on_cpython():
    """Make firmware modules importable on CPython (unit tests only)."""
    import gc

    for p in (ROOT / "tests" / "shims", ROOT / "firmware"):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    # MicroPython's heap figures; CPython has no fixed heap to report.
    for name in ("mem_free", "mem_alloc"):
        if not hasattr(gc, name):
            setattr(gc, name, lambda: 0)


# --- emulators for the end-to-end tests (tests/e2e): the real firmware under the
# micropython binary, reached through its pty with pyserial.


@pytest.fixture(scope="session", autouse=True)
def _registry(tmp_path_factory):
    # Keep test emulators out of the user's registry of running emulators.
    old = os.environ.get("AMANAT_EMULATOR_REGISTRY")
    os.environ["AMANAT_EMULATOR_REGISTRY"] = str(tmp_path_factory.getbasetemp() / "registry")
    yield
    if old is None:
        del os.environ["AMANAT_EMULATOR_REGISTRY"]
    else:
        os.environ["AMANAT_EMULATOR_REGISTRY"] = old


@pytest.fixture(scope="module")
def auto_emu(tmp_path_factory):
    from e2e_support import MNEMONIC, Emu

    """A set-up regtest emulator that approves every prompt."""
    e = Emu(tmp_path_factory.mktemp("auto"), mnemonic=MNEMONIC, auto_confirm=True).start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def manual_emu(tmp_path_factory):
    from e2e_support import MNEMONIC, Emu

    """A set-up regtest emulator whose prompts are answered over DebugLink."""
    e = Emu(tmp_path_factory.mktemp("manual"), mnemonic=MNEMONIC).start()
    yield e
    e.stop()
