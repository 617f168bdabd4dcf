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
    from amanat import micropython_shim

    micropython_shim.install()
    if str(ROOT / "firmware") not in sys.path:
        sys.path.insert(0, str(ROOT / "firmware"))


# --- emulators for the end-to-end tests (tests/e2e): the real firmware under the
# micropython binary, reached through its pty with pyserial.


@pytest.fixture(scope="session", autouse=True)
def _registry(tmp_path_factory):
    # Keep test emulators out of the user's registry of running emulators,
    # and their anti-exfil records out of the user's state folder.
    base = tmp_path_factory.getbasetemp()
    names = {"AMANAT_EMULATOR_REGISTRY": base / "registry", "AMANAT_STATE_DIR": base / "state"}
    old = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(path) for name, path in names.items()})
    yield
    for name, value in old.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def auto_emu(tmp_path_factory):
    """A set-up regtest emulator that approves every prompt."""
    from e2e_support import MNEMONIC, Emu

    e = Emu(tmp_path_factory.mktemp("auto"), mnemonic=MNEMONIC, auto_confirm=True).start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def manual_emu(tmp_path_factory):
    """A set-up regtest emulator whose prompts are answered over DebugLink."""
    from e2e_support import MNEMONIC, Emu

    e = Emu(tmp_path_factory.mktemp("manual"), mnemonic=MNEMONIC).start()
    yield e
    e.stop()


# --- the QEMU tier (tests/qemu): the firmware frozen into the Cortex-M3 image
# (make qemu), driven through the same launcher, CLI and HWI as the unix
# emulator. Skipped when the image or QEMU is missing, unless
# AMANAT_REQUIRE_QEMU=1, when that is a failure naming what is missing. These
# live here, not in tests/qemu/conftest.py: two modules named conftest would
# shadow each other for the tests that import helpers from this one.


@pytest.fixture(scope="session")
def qemu_ready():
    from amanat import paths

    why = paths.qemu_missing()
    if why:
        if os.environ.get("AMANAT_REQUIRE_QEMU") == "1":
            pytest.fail(f"AMANAT_REQUIRE_QEMU=1, but {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="module")
def qemu_emu(qemu_ready, tmp_path_factory):
    """A set-up regtest device on the QEMU target that approves every prompt."""
    from e2e_support import MNEMONIC, Emu

    e = Emu(tmp_path_factory.mktemp("qemu"), target="qemu", mnemonic=MNEMONIC, auto_confirm=True).start()
    yield e
    e.stop()
