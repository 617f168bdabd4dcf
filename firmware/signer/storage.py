"""What the device keeps in flash, and how the seed is sealed there.

The seed is stored as its BIP39 entropy, encrypted (AES-256-CBC) under a key
derived from the PIN (PBKDF2-HMAC-SHA512 with a random salt) and
authenticated (HMAC-SHA256, encrypt-then-MAC), so that neither the seed nor
the PIN is readable from a flash dump and a wrong PIN is told from a right
one without decrypting anything. Failed PIN attempts are counted in flash
*before* each check, so that cutting the power does not reset the count;
after MAX_PIN_ATTEMPTS the seed is erased.
"""

import hashlib
import hmac
import json
import os

from .errors import StorageError
from .secrets import wipe

SEED_FORMAT = 1
KDF_ROUNDS = 4096
MAX_PIN_ATTEMPTS = 10
# Fee limits until the officer approves others (docs/protocol.md, "Fee limits").
DEFAULT_LIMITS = {"fee_percent_tenths": 100, "fee_max_sat": 1000000}
_SEED = "/seed.bin"
_SETTINGS = "/settings.json"


class WrongPin(Exception):
    def __init__(self, left):
        super().__init__("wrong PIN, %d attempts left" % left)
        self.left = left


def _keys(pin, salt):
    out = bytearray(hashlib.pbkdf2_hmac("sha512", pin, salt, KDF_ROUNDS, 64))
    return out


def check_pin_format(pin):
    """None if `pin` (text, or bytes-like so that no str copy is made) is
    4 to 12 digits; else the reason."""
    digits = "0123456789" if isinstance(pin, str) else b"0123456789"
    if not (4 <= len(pin) <= 12) or any(c not in digits for c in pin):
        return "a PIN is 4 to 12 digits"
    return None


class Storage:
    def __init__(self, root):
        self.root = root

    def path(self, name):
        return self.root + name

    # settings: small JSON, rewritten whole through a temporary file
    def settings(self):
        try:
            with open(self.path(_SETTINGS)) as f:
                return json.loads(f.read())
        except (OSError, ValueError):
            return {}

    def save_settings(self, values):
        tmp = self.path(_SETTINGS + ".tmp")
        try:
            with open(tmp, "w") as f:
                f.write(json.dumps(values))
            os.rename(tmp, self.path(_SETTINGS))
        except OSError as e:
            raise StorageError("cannot write settings: %s" % e)

    def initialized(self):
        try:
            os.stat(self.path(_SEED))
            return True
        except OSError:
            return False

    def store_seed(self, entropy, pin, network, passphrase_used, fingerprint=None):
        """Seal `entropy` (bytearray, 16..32 bytes) under `pin` (bytes)."""
        salt = os.urandom(16)
        iv = os.urandom(16)
        keys = _keys(pin, salt)
        import cryptolib  # MicroPython's AES; imported here so that the
        # settings helpers also load on CPython for tests.

        plain = bytearray(48)
        plain[0] = len(entropy)
        plain[1 : 1 + len(entropy)] = entropy
        try:
            ct = cryptolib.aes(memoryview(keys)[:32], 2, iv).encrypt(plain)
            head = bytes([SEED_FORMAT, 1 if passphrase_used else 0]) + salt + iv
            mac = hmac.new(memoryview(keys)[32:], head + ct, "sha256").digest()
        finally:
            wipe(keys)
            wipe(plain)
        tmp = self.path(_SEED + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(head + ct + mac)
            os.rename(tmp, self.path(_SEED))
        except OSError as e:
            raise StorageError("cannot store the seed: %s" % e)
        s = self.settings()
        s["network"] = network
        s["pin_failures"] = 0
        s["fingerprint"] = fingerprint  # public (it is in every PSBT); checks the passphrase
        self.save_settings(s)

    def seed_header(self):
        with open(self.path(_SEED), "rb") as f:
            return f.read()

    def passphrase_used(self):
        return self.seed_header()[1] == 1

    def unseal(self, pin):
        """The entropy as a bytearray (caller wipes it), or WrongPin."""
        s = self.settings()
        failures = s.get("pin_failures", 0) + 1
        s["pin_failures"] = failures
        self.save_settings(s)
        blob = self.seed_header()
        head, ct, mac = blob[:34], blob[34:82], blob[82:]
        if blob[0] != SEED_FORMAT or len(mac) != 32:
            raise StorageError("seed record has an unknown format")
        import cryptolib

        keys = _keys(pin, head[2:18])
        try:
            want = hmac.new(memoryview(keys)[32:], head + ct, "sha256").digest()
            if not hmac.compare_digest(want, mac):
                left = MAX_PIN_ATTEMPTS - failures
                if left <= 0:
                    self.erase()
                raise WrongPin(max(left, 0))
            plain = bytearray(cryptolib.aes(memoryview(keys)[:32], 2, head[18:34]).decrypt(ct))
        finally:
            wipe(keys)
        s["pin_failures"] = 0
        self.save_settings(s)
        n = plain[0]
        if not 16 <= n <= 32:
            wipe(plain)
            raise StorageError("seed record is damaged")
        entropy = bytearray(plain[1 : 1 + n])
        wipe(plain)
        return entropy

    def erase(self):
        for name in (_SEED, _SETTINGS):
            try:
                os.remove(self.path(name))
            except OSError:
                pass
