"""The audit trail: canonical JSON records in a hash chain, signed checkpoints,
bounded storage (docs/audit.md is the format an auditor reimplements).

Each record is one line of canonical JSON (keys sorted, no spaces, ASCII
only: what Python's json.dumps(sort_keys=True, separators=(",", ":"))
writes). It carries its format version `format`, its sequence number `seq`,
`prev`, the SHA-256 (hex) of the previous record's line, and `key`, the
fingerprint of the device's log key (None before a seed exists). A record
removed, reordered or edited breaks the chain where it happened. Whoever can
rewrite the flash could rewrite the chain from there, but not the
checkpoints: records the device signs with its log key (a key derived from
the seed at LOG_KEY_PATH, outside every wallet account), each over the seq
and line hash of the record before it.

A record is appended. A power cut in the middle of an append leaves a line
without its newline: the answer it recorded was not acted on, since the
firmware acts only after the record is written. The chain goes on from the
last whole line, and the next start writes a `power_loss` record naming the
cut line's length and hash, on a line of its own.

Storage is bounded: the trail lives in two files, the current one and an
archive. The current file becomes the archive once it holds half the
capacity and there is no archive; an archive is removed only when the
officer acknowledges on the device that a host exported it (audit_exported).
Requests that sign or change the device are refused once the files hold the
capacity (TrailFull), never a record dropped; the records of the device's
own life (boots, PIN entries, refusals, checkpoints) are still written, into
the flash kept free beyond the capacity.
"""

import hashlib
import os
from binascii import hexlify

GENESIS = "0" * 64
# The records' format. 1: json.dump's own layout; 2: canonical JSON with
# the log key's fingerprint. Both chain the same way.
FORMAT = 2
# The log key: m/1095582030'/0', 1095582030 being "AMAN" in ASCII; no
# BIP44/48/84/86 account lives there, so no wallet's key is ever used.
LOG_KEY_PATH = "m/1095582030h/0h"
CHECKPOINT_TAG = b"amanat/audit/checkpoint"
CHECKPOINT_EVERY = 64  # records without a checkpoint before signing waits for one
WARN_PERCENT = 80  # of the capacity: the officer is told to export
_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _hex_sha256(b):
    return hexlify(hashlib.sha256(b).digest()).decode()


def tagged_hash(tag, data):
    t = hashlib.sha256(tag).digest()
    return hashlib.sha256(t + t + data).digest()


def checkpoint_digest(seq, head):
    """What a checkpoint signs: TH(CHECKPOINT_TAG, seq as 8 bytes big-endian
    || the 32-byte hash of record seq's line)."""
    from binascii import unhexlify

    return tagged_hash(CHECKPOINT_TAG, seq.to_bytes(8, "big") + unhexlify(head))


def key_fingerprint(pubkey):
    """The log key's fingerprint: the first 4 bytes of HASH160(pubkey), hex."""
    from embit import hashes

    return hexlify(hashes.hash160(pubkey)[:4]).decode()


# ---------------------------------------------------------------- canonical JSON


class _Writer:
    """Buffers what the record writer produces into 256-byte writes."""

    def __init__(self, f):
        self.f = f
        self.buf = []
        self.n = 0

    def write(self, s):
        self.buf.append(s)
        self.n += len(s)
        if self.n >= 256:
            self.flush()

    def flush(self):
        if self.buf:
            self.f.write("".join(self.buf))
            self.buf = []
            self.n = 0


def _string(s, w):
    w.write('"')
    start = 0
    for i, ch in enumerate(s):
        o = ord(ch)
        if 0x20 <= o < 0x7F and ch != "\"" and ch != "\\":
            continue
        w.write(s[start:i])
        start = i + 1
        if ch in _SHORT:
            w.write(_SHORT[ch])
        elif o > 0xFFFF:  # a UTF-16 surrogate pair, as json.dumps writes it
            o -= 0x10000
            w.write("\\u%04x\\u%04x" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
        else:
            w.write("\\u%04x" % o)
    w.write(s[start:])
    w.write('"')


def _value(v, w):
    if v is None:
        w.write("null")
    elif v is True:
        w.write("true")
    elif v is False:
        w.write("false")
    elif isinstance(v, int):
        w.write(str(v))
    elif isinstance(v, str):
        _string(v, w)
    elif isinstance(v, dict):
        w.write("{")
        first = True
        for k in sorted(v):
            if not isinstance(k, str):
                raise ValueError("record keys must be text")
            if not first:
                w.write(",")
            first = False
            _string(k, w)
            w.write(":")
            _value(v[k], w)
        w.write("}")
    elif isinstance(v, (list, tuple)):
        w.write("[")
        for n, x in enumerate(v):
            if n:
                w.write(",")
            _value(x, w)
        w.write("]")
    else:  # floats and bytes have no canonical form here
        raise ValueError("a record cannot hold %s" % type(v).__name__)


def dump(record, f):
    """Write `record` to `f` as one line of canonical JSON (no newline)."""
    w = _Writer(f)
    _value(record, w)
    w.flush()


# ---------------------------------------------------------------- the trail


class _Tee:
    """Hashes what is written on its way to the file."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()

    def write(self, s):
        self.h.update(s.encode())
        return self.f.write(s)


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def _last_seq(line):
    import json

    try:
        return int(json.loads(line).get("seq", 0))
    except (ValueError, AttributeError, TypeError):
        return 0


class Trail:
    """The chain over the board's trail files, [archive, current]: where it
    ends, how full it is, when it was last signed."""

    def __init__(self, board):
        self.board = board
        self.archive, self.current = board.audit_files()
        self.capacity = board.audit_capacity
        self.key = None  # the log key's fingerprint, once known
        self.seq = 0
        self.prev = GENESIS
        self.torn = None  # (bytes, sha256 hex) of a last line cut short
        self.checkpoint_seq = 0  # seq of the last checkpoint record
        self.archive_last = None  # seq of the archive's last record
        self.refused_full = False  # a TrailFull refusal was recorded since this start
        last = None
        for path in (self.archive, self.current):
            try:
                f = open(path, "rb")
            except OSError:
                continue
            file_last = None
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
                        last = file_last = line
                        if b'"screen":"checkpoint"' in line:
                            self.checkpoint_seq = _last_seq(line)
            if path == self.archive and file_last is not None:
                self.archive_last = _last_seq(file_last)
        if last is not None:
            self.prev = _hex_sha256(last)
            self.seq = _last_seq(last)
        self._separate = self.torn is not None

    # ---- state
    def used(self):
        return sum(_size(p) or 0 for p in (self.archive, self.current))

    def full(self):
        return self.used() >= self.capacity

    def percent(self):
        return self.used() * 100 // self.capacity

    def unsigned(self):
        """Records since the last checkpoint."""
        return self.seq - self.checkpoint_seq

    def head(self):
        """(seq, first 8 hex of the head hash): what the officer writes down."""
        return self.seq, self.prev[:8]

    def to_dict(self):
        return {"seq": self.seq, "head": self.prev, "used": self.used(), "capacity": self.capacity,
                "percent": self.percent(), "unsigned": self.unsigned(), "checkpoint_seq": self.checkpoint_seq,
                "key": self.key}

    # ---- writing
    def append(self, record):
        """Stamp `record` and append it through the board."""
        self._rotate()
        record["format"] = FORMAT
        record["seq"] = self.seq + 1
        record["prev"] = self.prev
        record["key"] = self.key
        tee = []

        def write(f):
            if self._separate:
                f.write("\n")  # ends the torn line; not part of any record's hash
            t = _Tee(f)
            tee.append(t)
            dump(record, t)

        self.board.record_screen(record, write)
        self.seq += 1
        self.prev = hexlify(tee[0].h.digest()).decode()
        self._separate = False
        if record.get("screen") == "checkpoint":
            self.checkpoint_seq = self.seq

    def _rotate(self):
        size = _size(self.current)
        if size is not None and size >= self.capacity // 2 and _size(self.archive) is None:
            os.rename(self.current, self.archive)
            self.archive_last = self.seq

    def line_hash(self, seq):
        """The hash of record `seq`'s line, or None if the trail does not hold it."""
        import json

        if seq == self.seq:
            return self.prev
        mark = ('"seq":%d' % seq).encode()
        for path in (self.archive, self.current):
            try:
                f = open(path, "rb")
            except OSError:
                continue
            with f:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    if line.endswith(b"\n") and mark in line:
                        line = line[:-1]
                        try:
                            if json.loads(line).get("seq") == seq:
                                return _hex_sha256(line)
                        except ValueError:
                            pass
        return None

    def archive_size(self):
        return _size(self.archive) or 0

    def free_exported(self, seq):
        """Remove the archive if every record in it is at most `seq`; bytes freed."""
        if self.archive_last is None or self.archive_last > seq:
            return 0
        n = _size(self.archive) or 0
        os.remove(self.archive)
        self.archive_last = None
        return n

    def power_loss_record(self):
        """The record that tells of a line a power cut left torn, or None."""
        if self.torn is None:
            return None
        n, h = self.torn
        return {"screen": "power_loss", "title": "Power lost while a record was written",
                "lines": ["The last record was cut short (%d bytes);" % n, "what it recorded was not acted on."],
                "torn_bytes": n, "torn_sha256": h}
