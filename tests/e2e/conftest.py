"""Emulators for end-to-end tests: the real firmware under the micropython
binary, reached through its pty with pyserial."""

import os

import pytest

from e2e_support import MNEMONIC, Emu


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
    """A set-up regtest emulator that approves every prompt."""
    e = Emu(tmp_path_factory.mktemp("auto"), mnemonic=MNEMONIC, auto_confirm=True).start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def manual_emu(tmp_path_factory):
    """A set-up regtest emulator whose prompts are answered over DebugLink."""
    e = Emu(tmp_path_factory.mktemp("manual"), mnemonic=MNEMONIC).start()
    yield e
    e.stop()
