"""What the device keeps in flash, and how the seed is sealed there.

The seed is stored as its BIP39 entropy, encrypted (AES-256-CBC) under keys
derived from the PIN (PBKDF2-HMAC-SHA512 with a random salt) *and* the
board's device-unique key (BoardBase.device_hmac: an eFuse key on the
ESP32, never in the filesystem), and authenticated (HMAC-SHA256,
encrypt-then-MAC). Neither the seed nor the PIN is readable from a flash
dump, and a copy of the flash alone cannot even test a PIN guess: each
guess needs the device. A wrong PIN is told from a right one without
decrypting anything. Failed PIN attempts are counted in flash, written and
read back *before* each check, so that cutting the power does not reset
the count; after MAX_PIN_ATTEMPTS the seed is erased.

Seed record, format 2: format (1 byte), flags (1: a passphrase is used),
salt (16), IV (16), device check (4: HMAC of a label under the device key,
to tell "sealed on another device" from a wrong PIN), ciphertext (48), MAC
(32). The 48-byte plaintext: length, secret (BIP39 entropy or a SLIP-0039
encrypted master secret), and at byte 33 the kind (0 BIP39; 1 SLIP-0039,
then its identifier, extendable flag and iteration exponent: the passphrase
is never stored, it decrypts the master secret at each unlock). Format 1
(no device key, no check) is still read, and sealed again as format 2 at
the unlock that opens it.
"""

import hashlib
import hmac
import os

from . import records
from .errors import StorageError
from .secrets import wipe

SEED_FORMAT = 2
KIND_SLIP39 = 1  # plaintext byte 33: 0 BIP39 entropy, 1 a SLIP-0039 encrypted master secret
KDF_ROUNDS = 4096
MAX_PIN_ATTEMPTS = 10
# Fee limits until the officer approves others (docs/protocol.md, "Fee limits").
DEFAULT_LIMITS = {"fee_percent_tenths": 100, "fee_max_sat": 1000000}
_SEED = "/seed.bin"
_SETTINGS = "/settings.json"
SETTINGS_VERSION = 1
_SETTINGS_MIGRATIONS = (lambda rec: rec,)  # 0 -> 1: the same fields, the version added


class WrongPin(Exception):
    def __init__(self, left):
        super().__init__("wrong PIN, %d attempts left" % left)
        self.left = left


_LABEL_KEYS = b"amanat seed keys v2"
_LABEL_CHECK = b"amanat device check"


def _keys(pin, salt, device_hmac=None):
    """64 bytes (AES key, MAC key) from the PIN and the salt, and with
    `device_hmac` (format 2) the device key: a bytearray the caller wipes."""
    k = bytearray(hashlib.pbkdf2_hmac("sha512", pin, salt, KDF_ROUNDS, 64))
    if device_hmac is None:
        return k
    try:
        d = device_hmac(k)
    finally:
        wipe(k)
    return bytearray(hmac.new(d, _LABEL_KEYS, "sha512").digest())


def pin_delay_ms(failures):
    """How long the device waits, by its own clock, before it takes the next
    PIN after `failures` wrong ones in a row: nothing after one or two, then
    2, 4, 8 ... 128 seconds. The count is in flash, so the wait is applied
    again after a restart: cutting the power does not skip it."""
    return 0 if failures < 3 else 1000 << (failures - 2)


def check_pin_format(pin):
    """None if `pin` (text, or bytes-like so that no str copy is made) is
    4 to 12 digits; else the reason."""
    digits = "0123456789" if isinstance(pin, str) else b"0123456789"
    if not (4 <= len(pin) <= 12) or any(c not in digits for c in pin):
        return "a PIN is 4 to 12 digits"
    return None


class Storage:
    def __init__(self, root, device_hmac):
        self.root = root
        self.device_hmac = device_hmac  # the board's (BoardBase.device_hmac)

    def path(self, name):
        return self.root + name

    # settings: small JSON, rewritten whole (records.py)
    def settings(self):
        """The settings (network, fingerprint, PIN failures, fee limits);
        {} before setup; StorageError if the record is damaged."""
        return records.read(self.path(_SETTINGS), "settings", SETTINGS_VERSION, _SETTINGS_MIGRATIONS, missing={})

    def save_settings(self, values):
        records.write(self.path(_SETTINGS), "settings", SETTINGS_VERSION, values)

    def initialized(self):
        try:
            os.stat(self.path(_SEED))
            return True
        except OSError:
            return False

    def store_seed(self, entropy, pin, network, passphrase_used, fingerprint=None, slip39=None, log_key=None):
        """Seal `entropy` (bytearray, 16..32 bytes: BIP39 entropy, or with
        `slip39` = (identifier, extendable, exponent) a SLIP-0039 encrypted
        master secret) under `pin` (bytes). `log_key`: the audit trail's
        public key (hex), kept so that records name it before unlock."""
        # A new seed starts with new settings (the fingerprint is public: it
        # is in every PSBT; it tells a mistyped passphrase at unlock). They
        # are written first: the seed record is what makes the device set
        # up, so a power cut between the two leaves a device that sets up
        # again, never a seed without its network and fingerprint.
        self.save_settings({"network": network, "pin_failures": 0, "fingerprint": fingerprint, "log_key": log_key})
        self._seal(entropy, pin, 1 if passphrase_used else 0, slip39)

    def _device_check(self):
        return self.device_hmac(_LABEL_CHECK)[:4]

    def _seal(self, entropy, pin, flags, slip39=None):
        salt = os.urandom(16)
        iv = os.urandom(16)
        keys = _keys(pin, salt, self.device_hmac)
        import cryptolib  # MicroPython's AES; imported here so that the
        # settings helpers also load on CPython for tests.

        plain = bytearray(48)
        plain[0] = len(entropy)
        plain[1 : 1 + len(entropy)] = entropy
        if slip39 is not None:  # the kind and what SLIP-0039 decryption needs (zeros: BIP39)
            identifier, extendable, exponent = slip39
            plain[33] = KIND_SLIP39
            plain[34:36] = identifier.to_bytes(2, "big")
            plain[36] = 1 if extendable else 0
            plain[37] = exponent
        try:
            ct = cryptolib.aes(memoryview(keys)[:32], 2, iv).encrypt(plain)
            head = bytes([SEED_FORMAT, flags]) + salt + iv + self._device_check()
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

    def seed_header(self):
        with open(self.path(_SEED), "rb") as f:
            return f.read()

    def passphrase_used(self):
        return self.seed_header()[1] == 1

    def check_record(self):
        """StorageError unless the seed record is one this device can open with a PIN."""
        self._record()

    def _record(self):
        """(format, head, ciphertext, MAC) of the seed record; StorageError
        if it is not one this firmware reads, or was sealed on another device."""
        blob = self.seed_header()
        form = blob[0] if blob else None
        size = {1: 34, 2: 38}.get(form)
        if size is None or len(blob) != size + 80:
            raise StorageError("the seed record has an unknown format or length")
        head = blob[:size]
        if form == 2 and not hmac.compare_digest(head[34:38], self._device_check()):
            raise StorageError("the seed was sealed on another device (its device key differs): "
                               "a copied flash image cannot be opened here")
        return form, head, blob[size : size + 48], blob[size + 48 :]

    def unseal(self, pin):
        """(secret as a bytearray the caller wipes, SLIP-0039 meta or None),
        or WrongPin. The secret is BIP39 entropy, or with meta
        (identifier, extendable, exponent) a SLIP-0039 encrypted master secret."""
        form, head, ct, mac = self._record()
        failures = self.pin_failures() + 1
        self._count_attempt(failures)
        import cryptolib

        keys = _keys(pin, head[2:18], self.device_hmac if form == 2 else None)
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
        try:
            n = plain[0]
            if not 16 <= n <= 32 or plain[33] not in (0, KIND_SLIP39):
                raise StorageError("seed record is damaged")
            entropy = bytearray(plain[1 : 1 + n])
            meta = None
            if plain[33] == KIND_SLIP39:
                meta = (int.from_bytes(plain[34:36], "big"), plain[36] == 1, plain[37])
        finally:
            wipe(plain)
        if form == 1:  # sealed again with the device key, before the count is cleared
            self._seal(entropy, pin, head[1])
        s = self.settings()
        s["pin_failures"] = 0
        self.save_settings(s)
        return entropy, meta

    def reseal(self, secret, meta, pin):
        """Seal the seed again under `pin`: what unseal gave with the old one
        (a PIN change), its flags kept."""
        self._seal(secret, pin, self.seed_header()[1], meta)

    def pin_failures(self):
        return self.settings().get("pin_failures", 0)

    def _count_attempt(self, failures):
        """Record the attempt about to be checked, and read it back: a count
        that did not reach the flash must not let a PIN be tried."""
        s = self.settings()
        s["pin_failures"] = failures
        self.save_settings(s)
        if self.pin_failures() != failures:
            raise StorageError("the PIN attempt could not be recorded in flash")

    def erase(self):
        """Remove the seed and the settings. The sealed record is first
        overwritten in place with random bytes, so that the file's last
        contents are not the ciphertext (littlefs writes copies: blocks it
        freed may keep old bytes until reused; docs/threat-model.md)."""
        try:
            size = len(self.seed_header())
            with open(self.path(_SEED), "r+b") as f:
                f.write(os.urandom(size))
        except OSError:
            pass
        for name in (_SEED, _SETTINGS):
            try:
                os.remove(self.path(name))
            except OSError:
                pass
