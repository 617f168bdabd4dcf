"""Checking the device's audit trail: the hash chain its records carry.

Each record has `seq` (1, 2, 3, ...) and `prev`, the SHA-256 of the previous
record's line as written (firmware/signer/audit.py). A record removed,
reordered or edited in place breaks the chain there.
"""

import hashlib
import json

GENESIS = "0" * 64


def parse(lines: list[bytes]) -> list[dict]:
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
            out.append(rec if isinstance(rec, dict) else {"screen": "(not a record)"})
        except ValueError:
            out.append({"screen": "(unreadable record)", "raw": line.decode("utf-8", "replace")})
    return out


def check_chain(lines: list[bytes]) -> list[str]:
    """What is wrong with the chain (empty: intact). The first record kept
    can only be checked if the trail starts there (seq 1)."""
    problems = []
    records = parse(lines)
    for n, (line, rec) in enumerate(zip(lines, records)):
        seq, prev = rec.get("seq"), rec.get("prev")
        if not isinstance(seq, int) or not isinstance(prev, str):
            problems.append(f"record {n + 1}: no seq/prev, not part of the chain")
            continue
        if n == 0:
            if seq == 1 and prev != GENESIS:
                problems.append("record 1: the first record must start the chain")
            continue
        before = records[n - 1]
        if isinstance(before.get("seq"), int) and seq != before["seq"] + 1:
            problems.append(f"record {n + 1}: seq {seq} follows {before['seq']} (a record is missing or moved)")
        if prev != hashlib.sha256(lines[n - 1]).hexdigest():
            problems.append(f"record {n + 1} (seq {seq}): the record before it was changed or removed")
    return problems
