"""A hash chain over the audit trail.

Each record carries its format version `format`, its sequence number `seq`
and `prev`, the SHA-256 (hex) of the previous record's line exactly as
written. A record removed, reordered or edited in place breaks the chain
where it happened, which `amanat audit` reports. Whoever can rewrite the
flash can also rewrite the whole chain from that point: the chain shows
accidents and partial edits, not a forger with the flash in hand.

A record is one line, appended. A power cut in the middle of an append
leaves a line without its newline (littlefs keeps the file as it was before
the write, but a host file system may not): the answer it recorded was not
acted on, since the firmware acts only after the record is written. The
chain goes on from the last whole line, and the next start records a
`power_loss` record naming the cut line's length and hash, on a line of its
own, so that the trail still reads as a chain.
"""

import hashlib
import io
import json
from binascii import hexlify

GENESIS = "0" * 64
# The records' format version. Format 0 records (no `format` field) are read
# as format 1: the fields are the same.
FORMAT = 1


def _hex_sha256(b):
    return hexlify(hashlib.sha256(b).digest()).decode()


class _Tee(io.IOBase):
    """Hashes what json.dump writes on its way to the file."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()

    def write(self, b):
        self.h.update(b.encode() if isinstance(b, str) else b)
        return self.f.write(b)


class Chain:
    def __init__(self, files):
        # Pick up where the trail ends: the last whole record's seq and line
        # hash, and a torn last line if a power cut left one.
        self.seq = 0
        self.prev = GENESIS
        self.torn = None  # (bytes, sha256 hex) of a last line cut short
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
                    if not line.endswith(b"\n"):
                        self.torn = (len(line), _hex_sha256(line))
                        break
                    self.torn = None
                    line = line[:-1]
                    if line:
                        last = line
        if last is not None:
            self.prev = _hex_sha256(last)
            try:
                self.seq = int(json.loads(last).get("seq", 0))
            except (ValueError, AttributeError, TypeError):
                self.seq = 0
        self._separate = self.torn is not None
        self._tee = None

    def stamp(self, record):
        self.seq += 1
        record["format"] = FORMAT
        record["seq"] = self.seq
        record["prev"] = self.prev

    def wrap(self, f):
        """The writer the board hands to json.dump for this record."""
        if self._separate:
            f.write("\n")  # ends the torn line; not part of any record's hash
        self._tee = _Tee(f)
        return self._tee

    def written(self):
        self.prev = hexlify(self._tee.h.digest()).decode()
        self._tee = None
        self._separate = False

    def power_loss_record(self):
        """The record that tells of a line a power cut left torn, or None."""
        if self.torn is None:
            return None
        n, h = self.torn
        return {"screen": "power_loss", "title": "Power lost while a record was written",
                "lines": ["The last record was cut short (%d bytes);" % n, "what it recorded was not acted on."],
                "torn_bytes": n, "torn_sha256": h}
