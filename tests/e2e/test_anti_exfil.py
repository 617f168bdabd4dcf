"""Anti-exfil signing through the emulator's pty: every ECDSA signature in
two rounds (sign-to-contract), checked by the host against its entropy;
single-sig and 2-of-3 multisig with two emulated officers, libbitcoinkernel
on the results; the rules between the rounds; and firmware that cheats."""

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS

from amanat import anti_exfil, finalize, kernel, paths, psbt_raw, psbt_tools, txbuild
from amanat.client import Client
from amanat.errors import AntiExfilFailure, DeviceError, TransportError
from e2e_support import MNEMONIC, Emu

NETWORK = "regtest"
NET = NETWORKS[NETWORK]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
SECOND = bip39.mnemonic_from_bytes(bytes(range(16)))
ROOT2 = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(SECOND), version=NET["xprv"])
HOST_KEY = bip32.HDKey.from_seed(bytes(range(1, 65)), version=NET["xprv"])
PAYEE = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
BIN = os.path.dirname(sys.executable)
ECDSA_KINDS = ("p2wpkh", "p2sh-p2wpkh", "p2pkh")


def account(kind, root=ROOT):
    path = txbuild.account_path(kind, NETWORK)
    return txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)


def spend(kinds, tag):
    coins = [(account(k), i, 40_000 + 1000 * i) for i, k in enumerate(kinds)]
    total = sum(c[2] for c in coins)
    return txbuild.build_spend(coins, PAYEE, total // 2, 900, change=(account(kinds[0]), 5), tag=tag)


def no_anti_exfil_fields(raw):
    maps = psbt_raw.parse_maps(raw)
    return not any(k.startswith(anti_exfil.PREFIX) for m in maps.inputs for k in m)


@pytest.mark.parametrize("kinds", [[k] for k in ECDSA_KINDS] + [list(ECDSA_KINDS) + ["p2tr"]])
def test_single_sig_inputs_signed_with_anti_exfil(auto_emu, kinds):
    built = spend(kinds, tag=700 + len(kinds) + 10 * ECDSA_KINDS.index(kinds[0]))
    with auto_emu.client() as c:
        assert c.anti_exfil
        signed = c.sign_psbt(built.psbt.serialize())
    ecdsa = sum(k != "p2tr" for k in kinds)
    assert signed.signatures == len(kinds) and signed.anti_exfil == ecdsa
    assert no_anti_exfil_fields(signed.psbt)  # the host strips them before anything else sees the PSBT
    kernel.verify_transaction(finalize.finalize(psbt_raw.parse_psbt(signed.psbt)), built.spent)


@pytest.fixture(scope="module")
def second_officer(tmp_path_factory):
    e = Emu(tmp_path_factory.mktemp("second"), mnemonic=SECOND, auto_confirm=True).start()
    yield e
    e.stop()


@pytest.mark.parametrize("kind", ["wsh", "sh-wsh", "sh"])
def test_two_of_three_signed_by_two_devices_with_anti_exfil(auto_emu, second_officer, kind):
    path = {"wsh": "m/48h/1h/0h/2h", "sh-wsh": "m/48h/1h/0h/1h", "sh": "m/45h"}[kind]
    w = txbuild.Multisig(kind, 2, True, [txbuild.cosigner(r, path) for r in (ROOT, ROOT2, HOST_KEY)])
    coins = [(w, i, 60_000 + i) for i in range(3)]
    built = txbuild.build_spend(coins, PAYEE, 100_000, 2_000, change=(w, 7), tag=800 + len(kind))
    raw = built.psbt.serialize()
    signed = []
    for emu in (auto_emu, second_officer):
        with emu.client() as c:
            c.register_wallet("AE-" + kind, w.descriptor())
            one = c.sign_psbt(raw)
        assert one.signatures == 3 and one.anti_exfil == 3
        signed.append(one.psbt)
    combined = psbt_tools.combine(signed)
    assert psbt_tools.verify(combined).partial == 6
    kernel.verify_transaction(finalize.finalize(psbt_raw.parse_psbt(combined)), built.spent)


class Rounds(Client):
    """A client whose second round can be made to fail, and which keeps
    what it sent in each round."""

    fail_second = False

    def _upload(self, raw, progress):
        self.sent = getattr(self, "sent", []) + [raw]
        return super()._upload(raw, progress)

    def _long(self, method, params, status=None):
        if params.get("anti_exfil") == "reveal" and self.fail_second:
            raise TransportError("the line went away")
        return super()._long(method, params, status)


def test_a_broken_off_second_round_is_counted_and_the_same_entropy_sent_again(auto_emu):
    raw = spend(["p2wpkh", "p2pkh"], tag=901).psbt.serialize()
    book_before = anti_exfil.Book(ROOT.my_fingerprint.hex()).data["aborted"]
    with Rounds(auto_emu.port) as c:
        c.fail_second = True
        with pytest.raises(TransportError) as e:
            c.sign_psbt(raw)
        assert e.value.anti_exfil_aborted == book_before + 1
        first_try = c.sent[0]
        c.fail_second, c.sent = False, []
        signed = c.sign_psbt(raw)
    assert c.sent[0] == first_try  # the same commitments: the same entropy
    assert signed.anti_exfil == 2
    book = anti_exfil.Book(ROOT.my_fingerprint.hex())
    assert book.data["pending"] == {} and book.data["aborted"] == book_before + 1


def first_round(c, raw):
    """Round 1 by hand: (the PSBT's maps, the entropies, the device's answer maps, the openings)."""
    base = psbt_raw.parse_maps(raw)
    rhos = {w: os.urandom(32) for w in anti_exfil.wanted(base, ROOT.my_fingerprint)}
    res = c._long("sign_psbt", {"sha256": c._upload(anti_exfil.with_commitments(base, rhos), lambda *a: None),
                                "anti_exfil": "commit"})
    assert res["signatures"] == 0 and res["openings"] == len(rhos)
    answer = psbt_raw.parse_maps(c._download(res, {}, lambda *a: None))
    return base, rhos, answer, anti_exfil.openings(answer, rhos)


def jade_form(answer, rhos):
    """Round 2 as Jade's proposal has it: the device's first answer (its
    openings in it) with the entropy added."""
    out = psbt_raw.Maps(answer.glob, [dict(m) for m in answer.inputs], answer.outputs)
    for (i, sec), rho in rhos.items():
        out.inputs[i][anti_exfil.field(anti_exfil.HOST_ENTROPY, sec)] = rho
    return out.serialize()


def reveal(c, raw):
    return c._long("sign_psbt", {"sha256": c._upload(raw, lambda *a: None), "anti_exfil": "reveal"})


def test_the_rules_between_the_rounds(auto_emu):
    raw = spend(["p2wpkh", "p2sh-p2wpkh"], tag=902).psbt.serialize()
    with auto_emu.client() as c:
        with pytest.raises(DeviceError, match="no first anti-exfil round"):
            reveal(c, raw)
        # Another request between the rounds ends the round.
        base, rhos, answer, opened = first_round(c, raw)
        c.get_xpub("m/84h/1h/0h")
        with pytest.raises(DeviceError, match="no first anti-exfil round"):
            reveal(c, anti_exfil.with_entropy(base, rhos, opened))
        # A PSBT changed between the rounds is refused, and the round is over.
        base, rhos, answer, opened = first_round(c, raw)
        changed = psbt_raw.parse_maps(anti_exfil.with_entropy(base, rhos, opened))
        changed.outputs[0][b"\xfc\x05other"] = b"x"  # any field but the anti-exfil ones
        with pytest.raises(DeviceError, match="not the one approved in the first anti-exfil round"):
            reveal(c, changed.serialize())
        with pytest.raises(DeviceError, match="no first anti-exfil round"):
            reveal(c, anti_exfil.with_entropy(base, rhos, opened))
        # Entropy that does not open the commitment.
        base, rhos, answer, opened = first_round(c, raw)
        wrong = {w: bytes(32) for w in rhos}
        with pytest.raises(DeviceError, match="does not match its commitment"):
            reveal(c, anti_exfil.with_entropy(base, wrong, opened))
        # Round 1 without a commitment for one of the signatures.
        some = dict(list({w: os.urandom(32) for w in anti_exfil.wanted(base, ROOT.my_fingerprint)}.items())[:1])
        digest = c._upload(anti_exfil.with_commitments(base, some), lambda *a: None)
        with pytest.raises(DeviceError, match="input 1: no anti-exfil commitment for key"):
            c._long("sign_psbt", {"sha256": digest, "anti_exfil": "commit"})
        # Jade's form of round 2 (the first answer with the entropy added) is taken too.
        base, rhos, answer, opened = first_round(c, raw)
        res = reveal(c, jade_form(answer, rhos))
        signed = psbt_raw.parse_maps(c._download(res, {}, lambda *a: None))
        assert anti_exfil.check_signatures(answer, signed, rhos, opened) == 2


def test_psbt_verify_checks_the_openings_it_finds(auto_emu, tmp_path):
    raw = spend(["p2wpkh"], tag=903).psbt.serialize()
    with auto_emu.client() as c:
        base, rhos, answer, opened = first_round(c, raw)
        res = reveal(c, jade_form(answer, rhos))
        signed = c._download(res, {}, lambda *a: None)  # as it left the device: every round's field in it
    good = tmp_path / "good.psbt"
    good.write_bytes(signed)
    out = subprocess.run([os.path.join(BIN, "amanat"), "psbt", "verify", "--json", str(good)], capture_output=True,
                         text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["files"][0]["anti_exfil_checked"] == 1, out.stderr
    maps = psbt_raw.parse_maps(signed)
    (i, sec), rho = next(iter(rhos.items()))
    maps.inputs[i][anti_exfil.field(anti_exfil.HOST_ENTROPY, sec)] = bytes(b ^ 1 for b in rho)
    bad = tmp_path / "bad.psbt"
    bad.write_bytes(maps.serialize())
    out = subprocess.run([os.path.join(BIN, "amanat"), "psbt", "verify", str(bad)], capture_output=True, text=True)
    assert out.returncode == 6 and "ANTI-EXFIL CHECK FAILED" in out.stderr
    final = psbt_tools.finalize(signed).psbt
    assert no_anti_exfil_fields(final) and no_anti_exfil_fields(psbt_tools.combine([signed]))


CHEATS = {
    # signs with the committed nonce but leaves the host's entropy out
    "ignores_rho": """
def sign(secret, msg, rho, commitment=None):
    k = _nonce(secret, msg, host_commitment(rho))
    opening = _point(k)
    fixed = bytes(k)
    return Signature(secp256k1.ecdsa_sign(msg, secret, lambda *a: fixed if a[4] == 0 else None, None)), opening
""",
    # a nonce of its own choosing (here RFC 6979 without the commitment, as plain signing does)
    "own_nonce": """
def sign(secret, msg, rho, commitment=None):
    k = _nonce(secret, msg, host_commitment(rho))
    opening = _point(k)
    from embit.ec import PrivateKey
    return PrivateKey(bytes(secret)).sign(msg), opening
""",
}


@pytest.fixture(params=sorted(CHEATS))
def cheating_emu(request, tmp_path, monkeypatch):
    """An emulator running a copy of the firmware whose anti-exfil signing cheats."""
    fw = tmp_path / "firmware"
    shutil.copytree(paths.firmware_dir(), fw, ignore=shutil.ignore_patterns("__pycache__"))
    with open(fw / "signer" / "anti_exfil.py", "a") as f:
        f.write("\n\n# A TEST BUILD THAT CHEATS\n" + CHEATS[request.param])
    monkeypatch.setattr(paths, "firmware_dir", lambda: fw)
    e = Emu(tmp_path / "dev", mnemonic=MNEMONIC, auto_confirm=True).start()
    yield e
    e.stop()


def test_firmware_that_cheats_is_caught_every_time(cheating_emu, tmp_path):
    for n, kinds in enumerate([["p2wpkh"], ["p2sh-p2wpkh", "p2pkh"], ["p2wpkh", "p2tr"]]):
        f = tmp_path / f"t{n}.psbt"
        f.write_bytes(spend(kinds, tag=950 + n).psbt.serialize())
        out = subprocess.run([os.path.join(BIN, "amanat"), "sign", str(f), "--port", cheating_emu.port],
                             capture_output=True, text=True)
        assert out.returncode == 6, out.stderr
        assert "ANTI-EXFIL CHECK FAILED, the device may be compromised" in out.stderr
        assert "nothing it signed was kept" in out.stderr
        assert not (tmp_path / f"t{n}.signed.psbt").exists()
    with Client(cheating_emu.port) as c:
        with pytest.raises(AntiExfilFailure, match="nonce does not hold the host's entropy"):
            c.sign_psbt(spend(["p2wpkh"], tag=960).psbt.serialize())
        with pytest.raises(AntiExfilFailure, match="PSBT 1 of the batch: input 0"):
            c.sign_batch([spend(["p2tr"], tag=962).psbt.serialize(), spend(["p2wpkh"], tag=963).psbt.serialize()])
        # Without anti-exfil the same firmware signs, and nothing can tell its nonces apart.
        plain = c.sign_psbt(spend(["p2wpkh"], tag=961).psbt.serialize(), anti_exfil=False)
        assert plain.signatures == 1 and plain.anti_exfil == 0
    out = subprocess.run([os.path.join(BIN, "amanat"), "sign", str(tmp_path / "t0.psbt"), "--no-anti-exfil",
                          "--port", cheating_emu.port], capture_output=True, text=True)
    assert out.returncode == 0 and "anti-exfil is off" in out.stderr


def test_a_batch_signed_with_anti_exfil(auto_emu):
    built = [spend(["p2wpkh", "p2pkh"], tag=1001), spend(["p2tr"], tag=1002), spend(["p2sh-p2wpkh"], tag=1003)]
    pending = set(anti_exfil.Book(ROOT.my_fingerprint.hex()).data["pending"])  # earlier tests' unfinished rounds
    with auto_emu.client() as c:
        signed = c.sign_batch([b.psbt.serialize() for b in built])
    assert [s.signatures for s in signed.signed] == [2, 1, 1]
    assert [s.anti_exfil for s in signed.signed] == [2, 0, 1]
    for b, s in zip(built, signed.signed):
        assert no_anti_exfil_fields(s.psbt)
        kernel.verify_transaction(finalize.finalize(psbt_raw.parse_psbt(s.psbt)), b.spent)
    screen = [s for s in auto_emu.screens() if s["screen"] == "review_batch"][-1]
    assert "Anti-exfil: on; 1 taproot input(s) signed without it" in screen["lines"]
    assert set(anti_exfil.Book(ROOT.my_fingerprint.hex()).data["pending"]) == pending  # each PSBT's entropy done with


def test_base64_round_trip_of_the_fields_keeps_them_verbatim():
    rho = bytes(range(32))
    sec = ROOT.derive("m/84h/1h/0h/0/0").key.sec()
    maps = psbt_raw.parse_maps(spend(["p2wpkh"], tag=990).psbt.serialize())
    raw = anti_exfil.with_commitments(maps, {(0, sec): rho})
    again = psbt_raw.parse_maps(base64.b64decode(base64.b64encode(raw)))
    assert again.inputs[0][b"\xfc\x02ae\x00" + sec] == anti_exfil.commitment(rho)
