"""`amanat sign` against fake devices: what the client verified is written,
and a device that returns anything else is exit 6 with nothing written."""

import json

import pytest
from click.testing import CliRunner
from embit.psbt import PSBT

import fake_client as fc
from amanat import cli, txbuild

PORT = "/dev/ttyUSB0"


def spend() -> bytes:
    root = fc.root_key()
    accts = {}
    for kind in ("p2wpkh", "p2tr"):
        path = txbuild.account_path(kind, "regtest")
        accts[kind] = txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)
    pay_to = txbuild.Account("p2wpkh", fc.root_key(fc.OTHER_MNEMONIC).derive("m/84h/1h/0h").to_public(), b"\0" * 4,
                             "m/84h/1h/0h").output(0, 0)
    return txbuild.build_spend([(accts["p2wpkh"], 0, 80_000), (accts["p2tr"], 1, 40_000)], pay_to, 100_000, 2_000,
                               change=(accts["p2tr"], 3)).psbt.serialize()


def sign(monkeypatch, tmp_path, *args, tamper=None):
    fc.install(monkeypatch, fc.FakeDevice(PORT, tamper=tamper))
    (tmp_path / "in.psbt").write_bytes(spend())
    return CliRunner().invoke(cli.main, ["sign", str(tmp_path / "in.psbt"), "-o", str(tmp_path / "out.psbt"), *args])


def test_sign_writes_the_verified_psbt_and_shows_the_review(monkeypatch, tmp_path):
    result = sign(monkeypatch, tmp_path, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["signatures"] == 2 and out["output"] == str(tmp_path / "out.psbt")
    assert [s["amount_sat"] for s in out["review"]["spends"]] == [100_000]
    assert out["review"]["fee_sat"] == 2_000 and out["review"]["change"][0]["path"] == "m/86h/1h/0h/1/3"
    signed = PSBT.parse((tmp_path / "out.psbt").read_bytes())
    assert signed.inputs[0].partial_sigs and signed.inputs[1].unknown[fc.TAP_KEY_SIG]
    table = sign(monkeypatch, tmp_path)
    assert table.exit_code == 0 and "2 signature(s) verified" in table.stdout
    tenths = out["review"]["fee_rate_tenths"]  # the device's rate, as the officer saw it
    assert "(%d.%d sat/vB)" % (tenths // 10, tenths % 10) in table.stdout


def test_sign_to_stdout_writes_only_the_psbt_there(monkeypatch, tmp_path):
    """`-o -`: stdout is the signed PSBT alone (base64), or the JSON alone;
    the review and the status go to stderr."""
    import base64

    fc.install(monkeypatch, fc.FakeDevice(PORT))
    (tmp_path / "in.psbt").write_bytes(spend())
    plain = CliRunner().invoke(cli.main, ["sign", str(tmp_path / "in.psbt"), "-o", "-"])
    assert plain.exit_code == 0, plain.output
    signed = PSBT.parse(base64.b64decode(plain.stdout.strip(), validate=True))
    assert signed.inputs[0].partial_sigs
    assert "2 signature(s) verified" in plain.stderr and "sat/vB" in plain.stderr
    as_json = CliRunner().invoke(cli.main, ["sign", str(tmp_path / "in.psbt"), "-o", "-", "--json"])
    assert as_json.exit_code == 0, as_json.output
    out = json.loads(as_json.stdout)
    assert PSBT.parse(base64.b64decode(out["psbt"])).inputs[0].partial_sigs and out["signatures"] == 2


@pytest.mark.parametrize("tamper, words", [("flip", "input 0: invalid"), ("output", "output 0"),
                                           ("drop", "the device removed field")])
def test_a_device_answer_that_does_not_verify_is_exit_6(monkeypatch, tmp_path, tamper, words):
    result = sign(monkeypatch, tmp_path, tamper=tamper)
    assert result.exit_code == 6 and words in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.psbt").exists()


@pytest.mark.parametrize("capacity, words", [({"inputs": 1}, "the PSBT has 2 inputs; the device signs at most 1"),
                                             ({"outputs": 1}, "the PSBT has 2 outputs; the device signs at most 1"),
                                             ({"psbt_bytes": 100}, "bytes; the device takes at most 100")])
def test_a_psbt_beyond_the_devices_limits_is_refused_before_it_is_sent(monkeypatch, tmp_path, capacity, words):
    dev = fc.FakeDevice(PORT)
    dev.capacity.update(capacity)
    fc.install(monkeypatch, dev)
    (tmp_path / "in.psbt").write_bytes(spend())
    result = CliRunner().invoke(cli.main, ["sign", str(tmp_path / "in.psbt"), "-o", str(tmp_path / "out.psbt")])
    assert result.exit_code == 5 and words in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.psbt").exists()
    assert {c[0] for c in dev.calls} == {"info", "close"}  # nothing else reached the device
