"""Checking the device's audit trail: the hash chain its records carry.

Each record has `format` (its format version; none means format 0, read as
format 1), `seq` (1, 2, 3, ...) and `prev`, the SHA-256 of the previous
record's line as written (firmware/signer/audit.py). A record removed,
reordered or edited in place breaks the chain there. A line a power cut left
torn is explained by the `power_loss` record the device writes after it at
its next start (the torn line's length and hash); the chain skips it.
"""

import hashlib
import json

GENESIS = "0" * 64
FORMAT = 1  # the newest record format this package reads


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
            and after.get("torn_sha256") == hashlib.sha256(line).hexdigest())


def torn_lines(lines: list[bytes], records: list[dict] | None = None) -> set[int]:
    """Indexes of the lines a power cut left torn, as the device reported them."""
    records = parse(lines) if records is None else records
    return {n for n in range(len(lines) - 1) if _torn(lines[n], records[n + 1])}


def check_chain(lines: list[bytes]) -> list[str]:
    """What is wrong with the chain (empty: intact). The first record kept
    can only be checked if the trail starts there (seq 1)."""
    problems = []
    records = parse(lines)
    torn = torn_lines(lines, records)
    before = None  # index of the last record of the chain
    for n, (line, rec) in enumerate(zip(lines, records)):
        if n in torn:
            continue
        seq, prev, fmt = rec.get("seq"), rec.get("prev"), rec.get("format", 0)
        if not isinstance(seq, int) or not isinstance(prev, str):
            problems.append(f"record {n + 1}: no seq/prev, not part of the chain")
            before = n
            continue
        if not isinstance(fmt, int) or not 0 <= fmt <= FORMAT:
            problems.append(f"record {n + 1} (seq {seq}): format {fmt!r}; this amanat reads formats up to {FORMAT}")
        if before is None:
            if seq == 1 and prev != GENESIS:
                problems.append("record 1: the first record must start the chain")
            before = n
            continue
        last = records[before]
        if isinstance(last.get("seq"), int) and seq != last["seq"] + 1:
            problems.append(f"record {n + 1}: seq {seq} follows {last['seq']} (a record is missing or moved)")
        if prev != hashlib.sha256(lines[before]).hexdigest():
            problems.append(f"record {n + 1} (seq {seq}): the record before it was changed or removed")
        before = n
    return problems
