"""A hash chain over the audit trail.

Each record carries its sequence number `seq` and `prev`, the SHA-256 (hex)
of the previous record's line exactly as written. A record removed,
reordered or edited in place breaks the chain where it happened, which
`amanat audit` reports. Whoever can rewrite the flash can also rewrite the
whole chain from that point: the chain shows accidents and partial edits,
not a forger with the flash in hand.
"""

import hashlib
import io
import json
from binascii import hexlify

GENESIS = "0" * 64


class _Tee(io.IOBase):
    """Hashes what json.dump writes on its way to the file."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()

    def write(self, b):
        self.h.update(b)
        return self.f.write(b)


class Chain:
    def __init__(self, files):
        # Pick up where the trail ends: the last record's seq and line hash.
        self.seq = 0
        self.prev = GENESIS
        last = None
        for path in files:
            try:
                f = open(path, "rb")
            except OSError:
                continue
            with f:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    line = line.rstrip(b"\n")
                    if line:
                        last = line
        if last is not None:
            self.prev = hexlify(hashlib.sha256(last).digest()).decode()
            try:
                self.seq = int(json.loads(last).get("seq", 0))
            except (ValueError, AttributeError, TypeError):
                self.seq = 0
        self._tee = None

    def stamp(self, record):
        self.seq += 1
        record["seq"] = self.seq
        record["prev"] = self.prev

    def wrap(self, f):
        """The writer the board hands to json.dump for this record."""
        self._tee = _Tee(f)
        return self._tee

    def written(self):
        self.prev = hexlify(self._tee.h.digest()).decode()
        self._tee = None
