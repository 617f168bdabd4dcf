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
        """The trail's records, the archive's first (the unix board's two files)."""
        out = []
        for name in ("screens.1.jsonl", "screens.jsonl"):
            path = self.state / name
            if path.exists():
                out += [json.loads(line) for line in path.read_text().splitlines() if line]
        return out

    def answered(self):
        """The screens the officer answered, without the device's own records."""
        return [r for r in self.screens() if "answer" in r]


def restore_by_hand(dl, mnemonic, pin, passphrase="", between=None):
    """Answer a fresh device's setup over DebugLink as an officer restoring
    BIP39 words does: not create, not shares, the words, the PIN twice, the
    passphrase (`between()` after each text, e.g. a host's poll)."""
    dl.wait_screen("setup_create")
    dl.reject()
    dl.wait_screen("setup_kind")
    dl.reject()
    for name, text in (("setup_mnemonic", mnemonic), ("setup_pin", pin), ("setup_pin_confirm", pin),
                       ("setup_passphrase", passphrase)):
        dl.wait_screen(name)
        dl.type_text(text)
        if between is not None:
            between()


def sign_checked(emu, built):
    """(signed PSBT, the device's review) of `built` signed through the emulator,
    every new signature verified by the host."""
    with emu.client() as c:
        signed = c.sign_psbt(built.psbt.serialize())
    assert signed.signatures >= 1
    return psbt_raw.parse_psbt(signed.psbt), signed.review


class LossyLine:
    """A relay between a host and an emulator's serial pty that damages the
    line: each byte, in either direction, is dropped or has a bit flipped with
    probability `rate` (seeded). The host opens `port`, as it would a USB
    serial port. `captured` holds every byte that went either way, as sent
    (rate 0: a tap on the line)."""

    def __init__(self, device_port, rate, seed=1):
        import os
        import random
        import threading
        import tty

        self.rng = random.Random(seed)
        self.rate = rate
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.dev = os.open(device_port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.dev)
        self.damaged = 0
        self.captured = bytearray()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _damage(self, data):
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.rate / 2:
                self.damaged += 1
                continue  # dropped
            if r < self.rate:
                self.damaged += 1
                b ^= 1 << self.rng.randrange(8)
            out.append(b)
        return bytes(out)

    def _run(self):
        import os
        import select

        pair = {self.master: self.dev, self.dev: self.master}
        while self.running:
            ready, _, _ = select.select(list(pair), [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    self.captured += data
                    os.write(pair[fd], self._damage(data))

    def close(self):
        import os

        self.running = False
        self.thread.join()
        for fd in (self.master, self._slave, self.dev):
            os.close(fd)
