"""The QEMU tier: the firmware frozen into the Cortex-M3 image (make qemu),
driven through the same launcher, CLI and HWI as the unix emulator.

Skipped when the image or QEMU is missing, unless AMANAT_REQUIRE_QEMU=1,
when that is a failure that names what is missing."""

import os

import pytest

from amanat import paths


def _missing():
    try:
        paths.qemu_bin()
        paths.qemu_image()
    except FileNotFoundError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def qemu_ready():
    why = _missing()
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
