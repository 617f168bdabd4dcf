"""Raw PSBT key/value scopes, for tests that check byte-level preservation
or craft PSBTs no library would write."""

from io import BytesIO

from embit import compact


def split_scopes(raw):
    """[[(key, value), ...] per scope]: global, inputs, outputs, in order."""
    s = BytesIO(raw)
    assert s.read(5) == b"psbt\xff"
    scopes, cur = [], []
    while s.tell() < len(raw):
        n = compact.read_from(s)
        if n == 0:
            scopes.append(cur)
            cur = []
            continue
        key = s.read(n)
        cur.append((key, s.read(compact.read_from(s))))
    assert not cur
    return scopes


def join_scopes(scopes):
    out = bytearray(b"psbt\xff")
    for scope in scopes:
        for key, value in scope:
            out += compact.to_bytes(len(key)) + key + compact.to_bytes(len(value)) + value
        out += b"\x00"
    return bytes(out)
