"""The sealed seed (signer/storage.py) under MicroPython, on the unix port's
littlefs-free filesystem in a temporary folder: keys from the PIN and the
board's device key, the attempt counter, a copied flash, the migration of
format-1 records."""

import hashlib
import hmac

from amanat import mpy, paths

PRELUDE = """
import json, os, sys
from signer import crypto
crypto.install()
from board_base import BoardBase
from signer.storage import Storage, WrongPin, MAX_PIN_ATTEMPTS, _keys
from signer.errors import StorageError

ROOT = %(root)r

class Board(BoardBase):
    def __init__(self, key):
        self.key = key
    def device_key(self):
        return bytearray(self.key)

def out(**kw):
    print(json.dumps(kw))

def error(fn):
    try:
        fn()
    except StorageError as e:
        return "StorageError: " + e.message
    except WrongPin as e:
        return "WrongPin %%d" %% e.left
    return None

ENTROPY = bytearray(range(16))
here = Board(b"\\x01" * 32)
other = Board(b"\\x02" * 32)
"""


def run(tmp_path, body):
    code = PRELUDE % {"root": str(tmp_path)} + body
    return {r.pop("case"): r for r in mpy.run_json(code, extra_path=[paths.boards_dir()])}


def test_seal_unseal_and_the_attempt_counter(tmp_path):
    r = run(tmp_path, """
s = Storage(ROOT, here.device_hmac)
s.store_seed(ENTROPY, b"2468", "regtest", False, "00112233")
out(case="right", entropy=list(s.unseal(b"2468")[0]), meta=s.unseal(b"2468")[1], failures=s.pin_failures())
out(case="wrong", error=error(lambda: s.unseal(b"1111")), failures=s.pin_failures())
out(case="right again", ok=s.unseal(b"2468")[0] == ENTROPY, failures=s.pin_failures())
for i in range(MAX_PIN_ATTEMPTS - 1):
    error(lambda: s.unseal(b"1111"))
out(case="last", error=error(lambda: s.unseal(b"1111")), initialized=s.initialized(),
    files=sorted(os.listdir(ROOT)))
""")
    assert r["right"] == {"entropy": list(range(16)), "meta": None, "failures": 0}
    assert r["wrong"] == {"error": "WrongPin 9", "failures": 1}
    assert r["right again"] == {"ok": True, "failures": 0}
    assert r["last"] == {"error": "WrongPin 0", "initialized": False, "files": []}


def test_a_copied_flash_cannot_be_opened_nor_a_pin_tested(tmp_path):
    r = run(tmp_path, """
Storage(ROOT, here.device_hmac).store_seed(ENTROPY, b"2468", "regtest", False, None)
elsewhere = Storage(ROOT, other.device_hmac)
out(case="other device", error=error(lambda: elsewhere.unseal(b"2468")), failures=elsewhere.pin_failures())
# An offline search: the right PIN, the salt from the copy, everything but the device key.
import hmac as h
blob = open(ROOT + "/seed.bin", "rb").read()
keys = _keys(b"2468", blob[2:18])
mac = h.new(memoryview(keys)[32:], blob[:38] + blob[38:86], "sha256").digest()
out(case="offline", matches=mac == blob[86:], format=blob[0], pin_in_flash=b"2468" in blob)
""")
    assert r["other device"]["error"].startswith("StorageError: the seed was sealed on another device")
    assert r["other device"]["failures"] == 0  # no PIN was tested
    assert r["offline"] == {"matches": False, "format": 2, "pin_in_flash": False}


def test_a_format_1_record_is_sealed_again_with_the_device_key(tmp_path):
    r = run(tmp_path, """
import cryptolib, hmac as h
# a record as the firmware before format 2 wrote it: keys from the PIN alone
salt, iv = bytes(range(16)), bytes(range(16, 32))
keys = _keys(b"2468", salt)
plain = bytearray(48); plain[0] = 16; plain[1:17] = ENTROPY
ct = cryptolib.aes(memoryview(keys)[:32], 2, iv).encrypt(plain)
head = bytes([1, 0]) + salt + iv
open(ROOT + "/seed.bin", "wb").write(head + ct + h.new(memoryview(keys)[32:], head + ct, "sha256").digest())
s = Storage(ROOT, here.device_hmac)
out(case="migrated", ok=s.unseal(b"2468") == (ENTROPY, None), format=open(ROOT + "/seed.bin", "rb").read()[0])
out(case="again", ok=s.unseal(b"2468")[0] == ENTROPY, elsewhere=error(lambda: Storage(ROOT, other.device_hmac).unseal(b"2468")) is not None)
""")
    assert r["migrated"] == {"ok": True, "format": 2}
    assert r["again"] == {"ok": True, "elsewhere": True}


def test_an_attempt_that_does_not_reach_the_flash_tests_no_pin(tmp_path):
    r = run(tmp_path, """
s = Storage(ROOT, here.device_hmac)
s.store_seed(ENTROPY, b"2468", "regtest", False, None)
s.save_settings = lambda values: None  # the write is lost
out(case="lost", error=error(lambda: s.unseal(b"2468")))
""")
    assert r["lost"]["error"] == "StorageError: the PIN attempt could not be recorded in flash"


def test_a_cut_while_a_seed_is_stored_never_leaves_it_without_its_settings(tmp_path):
    """The settings (network, fingerprint) are written before the seed: a
    power cut between the two leaves a device that is not set up (found by
    tests/e2e/test_power_cut.py: a seed whose device then signed as mainnet)."""
    r = run(tmp_path, """
class Cut(Exception):
    pass

def cut(*a):
    raise Cut()

for where in ("_seal", "save_settings"):  # the power goes while the seed, or the settings, are written
    s = Storage(ROOT, here.device_hmac)
    setattr(s, where, cut)
    try:
        s.store_seed(ENTROPY, b"2468", "regtest", False, "00112233")
    except Cut:
        pass
    s = Storage(ROOT, here.device_hmac)
    out(case="cut in " + where, initialized=s.initialized(), settings=s.settings() if s.initialized() else None)
s = Storage(ROOT, here.device_hmac)
s.store_seed(ENTROPY, b"2468", "regtest", False, "00112233")
out(case="again", initialized=s.initialized(), network=s.settings()["network"], fp=s.settings()["fingerprint"])
""")
    assert r["cut in _seal"] == r["cut in save_settings"] == {"initialized": False, "settings": None}
    assert r["again"] == {"initialized": True, "network": "regtest", "fp": "00112233"}


def test_the_board_hmac_is_hmac_sha256_of_its_key(tmp_path):
    [got] = mpy.run_json(PRELUDE % {"root": str(tmp_path)} + """
import binascii
print(json.dumps(binascii.hexlify(here.device_hmac(b"amanat")).decode()))
""", extra_path=[paths.boards_dir()])
    assert got == hmac.new(b"\x01" * 32, b"amanat", hashlib.sha256).hexdigest()


def test_a_slip39_backup_is_sealed_with_what_decrypts_it(tmp_path):
    r = run(tmp_path, """
s = Storage(ROOT, here.device_hmac)
s.store_seed(bytearray(range(32)), b"2468", "regtest", True, None, slip39=(12345, True, 1))
secret, meta = s.unseal(b"2468")
out(case="slip39", secret=list(secret), meta=list(meta), passphrase=s.passphrase_used())
""")
    assert r["slip39"] == {"secret": list(range(32)), "meta": [12345, True, 1], "passphrase": True}
