"""Power cuts: the emulator process is killed (SIGKILL: nothing flushed,
no handler runs) at a random moment of setup, a wallet registration, a
change of the fee limits, a PIN attempt or a signing, then started again on
the same state folder. Afterwards the device boots and opens with its PIN,
each record is the old one or the new one (never damaged, never lost), and
the PIN counter is never below the attempts that were seen to fail, and the
audit trail is still one chain (a record the cut tore is told by a
`power_loss` record after it).

Runs are seeded (AMANAT_POWER_CUT_SEED, default 1; AMANAT_POWER_CUTS runs,
default 200): a failure names its run, and the same seed replays it.
"""

import os
import random
import shutil
import signal
import threading
import time

import pytest
from embit import bip32, bip39
from embit.networks import NETWORKS

from amanat import audit, emulator, txbuild
from amanat.client import Client
from amanat.debuglink import DebugLink
from e2e_support import MNEMONIC, Emu, restore_by_hand

RUNS = int(os.environ.get("AMANAT_POWER_CUTS", "200"))
SEED = int(os.environ.get("AMANAT_POWER_CUT_SEED", "1"))
PIN = "2468"
TPRV = NETWORKS["regtest"]["xprv"]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=TPRV)
FP = ROOT.my_fingerprint
COSIGNERS = [bip32.HDKey.from_seed(bytes([i]) * 32, version=TPRV) for i in (1, 2)]
OLD_LIMITS = {"fee_percent_tenths": 100, "fee_max_sat": 1_000_000}
NEW_LIMITS = {"fee_percent_tenths": 55, "fee_max_sat": 777_777}
OPS = ("setup", "register", "limits", "pin", "sign")
# The kill falls in [0, SPAN] s after the operation starts: about 1.5 times
# what each takes on the unix emulator (limits 2 ms, register 50 ms, a PIN
# 40 ms, a small signing 35 ms), so that some cuts land inside it.
SPAN = {"setup": 0.3, "register": 0.08, "limits": 0.012, "pin": 0.07, "sign": 0.06}


def wallet(n):
    keys = [ROOT] + COSIGNERS
    return txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(k, "m/48h/1h/%dh/2h" % n) for k in keys])


def spend():
    path = txbuild.account_path("p2wpkh", "regtest")
    acct = txbuild.Account("p2wpkh", ROOT.derive(path).to_public(), FP, path)
    return txbuild.build_spend([(acct, 3, 80_000)], acct.output(0, 9), 30_000, 700, change=(acct, 1),
                               tag=4242).psbt.serialize()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A set-up device with one registered wallet, stopped: every run starts from a copy."""
    state = tmp_path_factory.mktemp("baseline")
    e = Emu(state, mnemonic=MNEMONIC, pin=PIN, auto_confirm=True).start()
    with e.client() as c:
        c.register_wallet("base", wallet(0).descriptor())
    e.stop()
    return state


def cut(state, op, delay):
    """Start the device, run `op`, kill it `delay` s in; what was seen to complete."""
    seen = {"done": False, "failed_pins": 0}
    unlock = op != "pin"
    rec = emulator.start(state, pin=PIN, auto_confirm=True, unlock=unlock)  # a fresh one waits at setup

    def work():
        try:
            if op == "setup":  # typed in as the officer does; the check screen is auto-approved
                with DebugLink(rec["debug_port"]) as dl:
                    restore_by_hand(dl, MNEMONIC, PIN)
                with Client(rec["port"], timeout=5) as c:
                    while c.info()["locked"]:
                        time.sleep(0.02)
                seen["done"] = True
                return
            if op == "pin":
                r = emulator.unlock(state, "1111")
                if r["outcome"] == "wrong":
                    seen["failed_pins"] = 1
                seen["done"] = True
                return
            with Client(rec["port"], timeout=5) as c:
                if op == "register":
                    c.register_wallet("new", wallet(1).descriptor())
                elif op == "limits":
                    c.set_limits(NEW_LIMITS["fee_percent_tenths"], NEW_LIMITS["fee_max_sat"])
                elif op == "sign":
                    c.sign_psbt(spend())
            seen["done"] = True
        except Exception:
            pass  # the line died with the device

    t = threading.Thread(target=work, daemon=True)
    started = time.monotonic()
    t.start()
    time.sleep(max(0.0, delay - (time.monotonic() - started)))
    os.killpg(rec["pid"], signal.SIGKILL)  # the power goes: nothing is flushed, no handler runs
    t.join(10)
    emulator.stop(state)
    return seen


def trail_checked(state, where):
    """The trail's lines, after checking that they are one chain: how many a cut tore."""
    lines = [line for line in (state / "screens.jsonl").read_bytes().split(b"\n") if line]
    assert audit.check_chain(lines) == [], where
    return len(audit.torn_lines(lines))


def check(state, op, seen, run):
    """Whether the cut tore a record of the trail (after checking everything)."""
    where = f"run {run} ({op}, seed {SEED})"
    if op == "pin":
        rec = emulator.start(state, pin=PIN, unlock=False)
        try:
            r = emulator.unlock(state, "1111")  # one more wrong PIN tells the count kept
            assert r["outcome"] == "wrong", where
            before = 10 - r["left"] - 1
            assert seen["failed_pins"] <= before <= 1, f"{where}: {before} failures kept"
            assert emulator.unlock(state, PIN)["outcome"] == "unlocked", where
        finally:
            emulator.stop(state)
        return trail_checked(state, where)
    rec = emulator.start(state, mnemonic=MNEMONIC, pin=PIN, auto_confirm=True)  # set up again if it was cut before
    try:
        assert rec["fingerprint"] == FP.hex(), where
        with Client(rec["port"]) as c:
            names = [w["name"] if isinstance(w, dict) else w for w in c.list_wallets()]
            limits = c.get_limits()
            for name in names:
                c.get_wallet(name)  # each record passes its check
            if op == "setup":
                assert names in ([], ), where
            else:
                assert "base" in names, where
                assert names in (["base"], ["base", "new"]), f"{where}: {names}"
                if op == "register" and seen["done"]:
                    assert "new" in names, where
                assert limits in (OLD_LIMITS, NEW_LIMITS), f"{where}: {limits}"
                if op == "limits" and seen["done"]:
                    assert limits == NEW_LIMITS, where
                if op != "limits":
                    assert limits == OLD_LIMITS, where
            assert c.sign_psbt(spend()).signatures == 1, where  # and it still signs
    finally:
        emulator.stop(state)
    return trail_checked(state, where)


def test_power_cuts_leave_the_old_or_the_new_state(baseline, tmp_path):
    rng = random.Random(SEED)
    completed = {op: [0, 0] for op in OPS}  # [cut before the end, after]
    torn = 0
    for run in range(RUNS):
        op = OPS[run % len(OPS)]
        state = tmp_path / f"run{run}"
        if op == "setup":
            state.mkdir()
        else:
            shutil.copytree(baseline, state, ignore=shutil.ignore_patterns("*.lock", "emulator.json"))
        seen = cut(state, op, rng.uniform(0, SPAN[op]))
        completed[op][seen["done"]] += 1
        torn += check(state, op, seen, run)
        shutil.rmtree(state)
    print("power cuts (before the operation completed, after):", completed, "; trail records torn:", torn)
    inside = sum(v[0] for v in completed.values())
    assert inside >= RUNS // 10, f"only {inside} of {RUNS} cuts fell inside an operation: {completed}"
