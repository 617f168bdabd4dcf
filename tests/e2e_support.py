"""Helpers for the end-to-end tests (fixtures are in conftest.py)."""

import json

from amanat import emulator, psbt_raw
from amanat.client import Client
from amanat.debuglink import DebugLink

MNEMONIC = "usage scrap plug noble deny corn permit stage tennis ceiling ranch hockey"


class Emu:
    """One emulator on a state folder, started with emulator.start()'s options."""

    def __init__(self, state, **kw):
        self.state = state
        self.kw = kw
        self.rec = None

    def start(self):
        self.rec = emulator.start(self.state, **self.kw)
        return self

    def stop(self):
        emulator.stop(self.state)

    @property
    def port(self):
        return self.rec["port"]

    def client(self, **kw):
        return Client(self.port, **kw)

    def debuglink(self):
        return DebugLink(self.rec["debug_port"])

    def screens(self):
        path = self.state / "screens.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sign_checked(emu, built):
    """(signed PSBT, the device's review) of `built` signed through the emulator,
    every new signature verified by the host."""
    with emu.client() as c:
        signed = c.sign_psbt(built.psbt.serialize())
    assert signed.signatures >= 1
    return psbt_raw.parse_psbt(signed.psbt), signed.review
