"""Checking the device's audit trail offline (docs/audit.md is the format).

Each record is one line: `format` (its format version; none means format 0,
read as format 1), `seq` (1, 2, 3, ...), `prev` (the SHA-256 of the previous
record's line as written) and, from format 2, `key` (the fingerprint of the
device's log key, or null before a seed) in canonical JSON. A record
removed, reordered or edited breaks the chain there. `checkpoint` records
carry the log key's signature over (seq, line hash) of the record before
them: a trail rewritten by whoever holds the flash has no valid checkpoint
over what was rewritten. A line a power cut left torn is explained by the
`power_loss` record the device writes after it at its next start (the torn
line's length and hash); the chain skips it.

Only public libraries: json, hashlib and coincurve (libsecp256k1).
"""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

import coincurve

from .anti_exfil import AntiExfilFailure, check as check_anti_exfil, tagged_hash

GENESIS = "0" * 64
FORMAT = 2  # the newest record format this package reads
LOG_KEY_PATH = "m/1095582030h/0h"  # "AMAN": outside every BIP44/48/84/86 account
CHECKPOINT_TAG = b"amanat/audit/checkpoint"


def canonical(record: dict) -> bytes:
    """A record's one canonical line (format 2): keys sorted, no spaces, ASCII."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def checkpoint_digest(seq: int, head: str) -> bytes:
    """What a checkpoint signs: TH(CHECKPOINT_TAG, seq as 8 bytes big-endian || head)."""
    return tagged_hash(CHECKPOINT_TAG, seq.to_bytes(8, "big") + bytes.fromhex(head))


def key_fingerprint(pubkey: bytes) -> str:
    """The log key's fingerprint: the first 4 bytes of HASH160(pubkey), hex."""
    return hashlib.new("ripemd160", hashlib.sha256(pubkey).digest()).digest()[:4].hex()


def parse(lines: list[bytes]) -> list[dict]:
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
            out.append(rec if isinstance(rec, dict) else {"screen": "(not a record)"})
        except ValueError:
            out.append({"screen": "(unreadable record)", "raw": line.decode("utf-8", "replace")})
    return out


def _torn(line: bytes, after: dict) -> bool:
    """Whether `line` is the torn line the power_loss record `after` names."""
    return (after.get("screen") == "power_loss" and after.get("torn_bytes") == len(line)
            and after.get("torn_sha256") == line_hash(line))


def torn_lines(lines: list[bytes], records: list[dict] | None = None) -> set[int]:
    """Indexes of the lines a power cut left torn, as the device reported them."""
    records = parse(lines) if records is None else records
    return {n for n in range(len(lines) - 1) if _torn(lines[n], records[n + 1])}


def announced_keys(lines: list[bytes]) -> list[str]:
    """The log keys (hex) the trail's `setup` records announce, oldest first:
    a device set up again after a wipe has signed its earlier checkpoints
    with an earlier seed's key. Announced by the trail itself, so they say
    which keys to expect, not that they are the device's: an auditor checks
    them against the keys on record."""
    out = []
    for rec in parse(lines):
        key = rec.get("log_key") if rec.get("screen") == "setup" else None
        if isinstance(key, str) and len(key) == 66 and key not in out:
            try:
                bytes.fromhex(key)
            except ValueError:
                continue
            out.append(key)
    return out


def join(files: list[list[bytes]]) -> tuple[list[bytes], list[str]]:
    """The lines of several exports of one trail, oldest first, as one: where
    they overlap (an export after a freed archive repeats the newer records)
    the same seq must be the same line. (lines, problems)."""
    out: list[bytes] = []
    problems: list[str] = []
    at: dict[int, int] = {}  # seq -> index in out
    for k, lines in enumerate(files, 1):
        for line in lines:
            try:
                seq = json.loads(line).get("seq")
            except (ValueError, AttributeError):
                seq = None
            if isinstance(seq, int) and seq in at and out:
                if out[at[seq]] != line:
                    problems.append(f"file {k}: record seq {seq} differs from the earlier file's")
                continue
            if isinstance(seq, int):
                at[seq] = len(out)
            out.append(line)
    return out, problems


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    records: int = 0
    counts: Counter = field(default_factory=Counter)
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None  # the last record's line hash
    checkpoints: int = 0  # valid ones
    last_checkpoint: dict | None = None  # {"seq", "covers_seq", "key", "host_time"}
    unsigned: int = 0  # records after the last valid checkpoint's cover, the checkpoint records excepted
    keys: list[str] = field(default_factory=list)  # log key fingerprints in the records, in order
    torn: int = 0

    def to_dict(self) -> dict:
        return {"ok": not self.problems, "problems": self.problems, "records": self.records,
                "counts": dict(sorted(self.counts.items())), "first_seq": self.first_seq,
                "last_seq": self.last_seq, "head": self.head, "checkpoints": self.checkpoints,
                "last_checkpoint": self.last_checkpoint, "unsigned": self.unsigned, "keys": self.keys,
                "torn": self.torn}


def check_chain(lines: list[bytes]) -> list[str]:
    """What is wrong with the chain alone (empty: intact): links, seq, format."""
    return verify(lines, keys=None).problems


def parse_expect(text: str) -> tuple[int, str]:
    """'SEQ:HEAD' from a paper log (HEAD: the first 8 or more hex of the head hash)."""
    seq, _, head = text.partition(":")
    head = head.strip().lower()
    if not seq.strip().isdigit() or len(head) < 8 or any(c not in "0123456789abcdef" for c in head):
        raise ValueError(f"{text!r}: expected SEQ:HEAD, the record number and at least 8 hex of its head hash")
    return int(seq), head


def verify(lines: list[bytes], keys: list[bytes] | None = (), expect: list[tuple[int, str]] = ()) -> Report:
    """Check the trail's lines (oldest first): every link, the canonical form
    of format 2 records, every checkpoint's signature under the log keys
    `keys` (public keys, SEC; None: checkpoints not checked, the chain only),
    and the paper log's (seq, head) entries `expect` (a trail cut short
    after one of them is caught here)."""
    rep = Report()
    records = parse(lines)
    torn = torn_lines(lines, records)
    rep.torn = len(torn)
    by_fp = {key_fingerprint(k): k for k in keys or ()}
    hashes: dict[int, str] = {}
    before = None  # index of the last record of the chain
    covered = 0  # the highest seq a valid checkpoint covers
    plain = []  # seqs of the records that are not checkpoints
    for n, (line, rec) in enumerate(zip(lines, records)):
        if n in torn:
            continue
        where = f"record {n + 1}"
        seq, prev, fmt = rec.get("seq"), rec.get("prev"), rec.get("format", 0)
        if not isinstance(seq, int) or not isinstance(prev, str):
            rep.problems.append(f"{where}: no seq/prev, not part of the chain")
            before = n
            continue
        where = f"record {n + 1} (seq {seq})"
        rep.records += 1
        rep.counts[str(rec.get("screen"))] += 1
        if rep.first_seq is None:
            rep.first_seq = seq
        rep.last_seq = seq
        hashes[seq] = line_hash(line)
        if not isinstance(fmt, int) or not 0 <= fmt <= FORMAT:
            rep.problems.append(f"{where}: format {fmt!r}; this amanat reads formats up to {FORMAT}")
        elif fmt >= 2:
            if canonical(rec) != line:
                rep.problems.append(f"{where}: not in canonical form (edited after it was written)")
            if rec.get("key") is not None and rec.get("key") not in rep.keys:
                rep.keys.append(rec["key"])
        if before is None:
            if seq == 1 and prev != GENESIS:
                rep.problems.append(f"{where}: the first record must start the chain")
        else:
            last = records[before]
            if isinstance(last.get("seq"), int) and seq != last["seq"] + 1:
                rep.problems.append(f"{where}: follows seq {last['seq']} (a record is missing or moved)")
            if prev != line_hash(lines[before]):
                rep.problems.append(f"{where}: the record before it was changed or removed")
        before = n
        if rec.get("screen") != "checkpoint":
            plain.append(seq)
        elif keys is not None:
            covers = _checkpoint(rec, seq, prev, by_fp, where, rep.problems)
            if covers is not None:
                rep.checkpoints += 1
                covered = covers
                rep.last_checkpoint = {"seq": seq, "covers_seq": covers, "key": rec.get("key"),
                                       "host_time": rec.get("host_time")}
    if keys is not None and rep.records:
        rep.unsigned = sum(1 for s in plain if s > covered)
        if rep.unsigned:
            rep.problems.append(f"{rep.unsigned} record(s) after seq {covered} are not covered by a valid "
                                f"checkpoint (export with `amanat audit export`, which signs one first)")
    if rep.last_seq is not None:
        rep.head = hashes[rep.last_seq]
    for seq, head in expect:
        if rep.last_seq is None or seq > rep.last_seq:
            rep.problems.append(f"the paper log has record {seq} (head {head[:8]}), but the trail ends at "
                                f"{rep.last_seq}: records were cut off the end")
        elif seq in hashes and not hashes[seq].startswith(head):
            rep.problems.append(f"record {seq}'s head is {hashes[seq][:8]}, the paper log says {head[:8]}")
        elif seq not in hashes:
            rep.problems.append(f"the paper log's record {seq} is not in the files given")
    return rep


def _checkpoint(rec: dict, seq: int, prev: str, by_fp: dict, where: str, problems: list[str]) -> int | None:
    """The seq a checkpoint record covers if its signature is valid, else None (the problem noted)."""
    covers, head, fp = rec.get("covers_seq"), rec.get("covers_head"), rec.get("key")
    if covers != seq - 1 or head != prev:
        problems.append(f"{where}: the checkpoint names record {covers}, not the one before it")
        return None
    pub = by_fp.get(fp)
    if pub is None:
        problems.append(f"{where}: the checkpoint is signed by log key {fp}, not one given (--key)")
        return None
    try:
        digest = checkpoint_digest(covers, head)
        der = bytes.fromhex(rec.get("sig", ""))
        if not coincurve.PublicKey(pub).verify(der, digest, hasher=None):
            raise ValueError
    except (ValueError, TypeError):
        problems.append(f"{where}: the checkpoint's signature does not verify under log key {fp} (forged)")
        return None
    try:
        check_anti_exfil(pub, digest, bytes.fromhex(rec.get("ae_entropy", "")),
                         bytes.fromhex(rec.get("ae_opening", "")), der)
    except (AntiExfilFailure, ValueError, TypeError) as e:
        problems.append(f"{where}: the checkpoint's nonce fails the anti-exfil check ({e})")
        return None
    return covers
