"""audit_read serves the board's audit files as one stream, oldest first
(on the board the trail is rotated into two files)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import firmware_on_cpython

firmware_on_cpython()
from signer import handlers, rpc  # noqa: E402


class Board:
    def __init__(self, files):
        self.files = files

    def audit_files(self):
        return self.files


class App:
    def __init__(self, files):
        self.board = Board(files)


def read_all(app, chunk):
    out, total = b"", None
    while total is None or len(out) < total:
        res = handlers.audit_read(app, rpc.Params({"offset": len(out), "size": chunk}, ("offset", "size")))
        total = res["total"]
        if not res["data"]:
            break
        out += res["data"]
    return out


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=9000), st.binary(max_size=9000), st.integers(1, 4096))
def test_two_files_read_as_one(tmp_path_factory, old, new, chunk):
    d = tmp_path_factory.mktemp("audit")
    (d / "audit.1.jsonl").write_bytes(old)
    (d / "audit.jsonl").write_bytes(new)
    app = App([str(d / "audit.1.jsonl"), str(d / "audit.jsonl"), str(d / "missing.jsonl")])
    assert read_all(app, chunk) == old + new
