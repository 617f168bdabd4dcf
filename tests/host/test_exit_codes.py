"""The README's exit-code table is what the commands do: one command that
ends with each code, against fake devices (tests/host/fake_client.py)."""

import re

import pytest
from click.testing import CliRunner

import fake_client as fc
from amanat import cli
from conftest import ROOT
from test_cli_sign import spend

PORT = "/dev/ttyUSB0"
TABLE = (ROOT / "README.md").read_text().split("`amanat` exit codes", 1)[1].split("\n\n", 2)[1]
DOCUMENTED = {int(c) for row in re.findall(r"^\| ([\d, ]+) \|", TABLE, re.M) for c in row.split(",")}


def interrupted(exc):
    def sign_psbt(self, raw, progress=None, anti_exfil=True):
        raise exc

    return sign_psbt


CASES = {  # code: (FakeDevice options or None for no device, argv, patch of FakeClient.sign_psbt)
    0: ({}, ["info"], None),
    1: ({}, ["sign", "{psbt}", "-o", "/nonexistent/folder/out.psbt"], None),
    2: ({}, ["sign"], None),
    3: (None, ["info"], None),
    4: ({"reject": True}, ["sign", "{psbt}"], None),
    5: ({"error": (9, "output 0: fee above the limit")}, ["sign", "{psbt}"], None),
    6: ({"tamper": "flip"}, ["sign", "{psbt}"], None),
    7: ({"busy": True}, ["info"], None),
    8: ({}, ["sign", "{missing}"], None),
    130: ({}, ["sign", "{psbt}"], interrupted(KeyboardInterrupt())),
    143: ({}, ["sign", "{psbt}"], interrupted(cli.Terminated())),
}


def test_every_documented_code_has_a_case():
    assert DOCUMENTED == set(CASES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_exit_code(code, monkeypatch, tmp_path):
    options, argv, patch = CASES[code]
    fc.install(monkeypatch, *([] if options is None else [fc.FakeDevice(PORT, **options)]))
    if patch is not None:
        monkeypatch.setattr(fc.FakeClient, "sign_psbt", patch)
    (tmp_path / "in.psbt").write_bytes(spend())
    names = {"psbt": str(tmp_path / "in.psbt"), "missing": str(tmp_path / "typo.psbt")}
    result = CliRunner().invoke(cli.main, [a.format(**names) for a in argv])
    assert result.exit_code == code, (result.output, result.exception)
    assert "Traceback" not in result.output
    if code:
        assert result.output.strip().splitlines()[-1].startswith("Error: ")  # ends with one line for people
    assert not (tmp_path / "in.signed.psbt").exists() or code == 0
