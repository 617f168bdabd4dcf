"""Stored records (signer/records.py): versioned, migrated, written as new
then renamed; a damaged or newer record is reported, never replaced by
defaults. Settings and wallet records go through them."""

import json

import pytest

from conftest import firmware_on_cpython

firmware_on_cpython()
from signer import records  # noqa: E402
from signer.errors import StorageError  # noqa: E402


def test_written_with_its_version_and_read_without(tmp_path):
    path = str(tmp_path / "r.json")
    records.write(path, "thing", 3, {"a": 1})
    assert json.loads(open(path).read()) == {"a": 1, "version": 3}
    assert records.read(path, "thing", 3) == {"a": 1}
    assert not (tmp_path / "r.json.tmp").exists()


def test_older_versions_are_migrated_step_by_step(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"n": 1}))  # no version: 0
    steps = (lambda r: dict(r, n=r["n"] * 10), lambda r: dict(r, m=True))
    assert records.read(str(path), "thing", 2, steps) == {"n": 10, "m": True}
    with pytest.raises(StorageError, match="format version 0, which this firmware cannot migrate"):
        records.read(str(path), "thing", 1)


@pytest.mark.parametrize("text, words", [
    ("{not json", "the thing record is damaged (it does not parse)"),
    ("[1, 2]", "the thing record is damaged (it does not parse)"),
    (json.dumps({"version": 9}), "the thing record has format version 9; this firmware reads up to 1"),
    (json.dumps({"version": "1"}), "format version '1'"),
])
def test_a_damaged_or_newer_record_is_reported(tmp_path, text, words):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(StorageError) as e:
        records.read(str(path), "thing", 1, (lambda r: r,))
    assert words in e.value.message


def test_a_missing_record(tmp_path):
    assert records.read(str(tmp_path / "none.json"), "thing", 1, missing={}) == {}
    with pytest.raises(StorageError, match="the thing is missing"):
        records.read(str(tmp_path / "none.json"), "thing", 1)


def test_damaged_settings_are_reported_not_reset(tmp_path):
    from signer.storage import Storage

    s = Storage(str(tmp_path), lambda data: bytes(32))
    s.save_settings({"network": "regtest", "pin_failures": 4})
    assert s.pin_failures() == 4
    (tmp_path / "settings.json").write_text('{"network": "regtest", "pin_fail')  # torn by hand
    with pytest.raises(StorageError, match="settings record is damaged"):
        s.pin_failures()  # never 0: a damaged counter is no reset counter
