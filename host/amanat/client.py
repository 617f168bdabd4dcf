"""A device, as the host tools see it: one method per protocol request.

Long operations (the officer reviewing, a signature in progress) have no
overall timeout: the client pings the device every second instead and gives
up only if it stops answering.
"""

import hashlib
import time
from dataclasses import dataclass

from .descriptors import normalize_path
from .errors import AmanatError, DeviceError, LimitError, ProtocolError, SignatureError, TransportError
from .psbt_verify import verify_new_signatures
from .transport import Transport

PROTOCOL = 1
PING_EVERY = 1.0
PING_GRACE = 20.0
RESENDS = 3  # times a request is sent again when its answer does not come

# What each answer must hold (docs/protocol.md), so that a device answering
# something else is a ProtocolError, not a crash further on.
_OPT = type(None)
RESULTS = {
    "ping": {"busy": (str, _OPT), "progress": (list, _OPT), "batch": (list, _OPT)},
    "cancel": {"cancelled": bool},
    "prompt": {"prompt": (dict, _OPT)},
    "info": {"protocol": int, "initialized": bool, "locked": bool, "firmware": str, "model": str,
             "network": (str, _OPT), "fingerprint": (bytes, _OPT), "target": str, "heap": dict, "limits": dict,
             "anti_exfil": (str, _OPT), "trail": dict},
    "get_xpub": {"xpub": str},
    "get_descriptors": {"receive": list, "internal": list},
    "display_address": {"address": str},
    "sign_message": {"signature": str},
    "audit_read": {"data": bytes, "total": int},
    "psbt_begin": {"chunk_size": int, "received": (int, _OPT)},
    "psbt_chunk": {"received": int},
    "psbt_end": {"sha256": bytes},
    "sign_psbt": {"sha256": bytes, "length": int, "signatures": int, "review": dict, "openings": (int, _OPT)},
    "psbt_read": {"data": bytes},
    "batch_add": {"index": int, "count": int},
    "sign_batch": {"review": dict, "signed": list},
    "register_wallet": {"name": str, "descriptor": str, "registration": bytes},
    "list_wallets": {"wallets": list},
    "get_wallet": {"name": str, "descriptor": str, "threshold": int, "keys": list, "registration": bytes},
    "delete_wallet": {},
    "wallet_address": {"address": str},
    "get_limits": {"fee_percent_tenths": int, "fee_max_sat": int},
    "set_limits": {"fee_percent_tenths": int, "fee_max_sat": int},
    "change_pin": {},
    "backup_check": {"matches": bool},
    "wipe": {},
    "audit_key": {"log_key": str, "path": str, "fingerprint": str},
    "audit_checkpoint": {"seq": int, "head": str, "signed": (bool, _OPT), "opening": (bytes, _OPT), "sig": (str, _OPT),
                         "record_seq": (int, _OPT)},
    "audit_exported": {"freed": int, "trail": dict},
}
CHECKPOINT_DUE = 14  # the device's error code when its trail waits for a checkpoint (docs/audit.md)


@dataclass(frozen=True)
class Signed:
    """A PSBT the device signed, checked on the host: it differs from the one
    sent only by `signatures` new signatures, each verified."""

    psbt: bytes
    signatures: int
    review: dict  # what the officer approved (docs/protocol.md, sign_psbt)
    anti_exfil: int = 0  # of the signatures, the ECDSA ones whose nonce was checked against the host's entropy


@dataclass(frozen=True)
class BatchSigned:
    """PSBTs the device signed after one approval of their batch, each
    checked on the host like a single one."""

    signed: list[Signed]  # in the order sent; each one's review is {} (the batch's is below)
    review: dict  # what the officer approved for the batch (docs/protocol.md, sign_batch)


def checked(method: str, res):
    """`res` if it has the fields and types `method` answers with."""
    if not isinstance(res, dict):
        raise ProtocolError(f"the device answered {method} with {type(res).__name__}, not a map")
    for key, kind in RESULTS.get(method, {}).items():
        value = res.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(f"the device's answer to {method} has no valid {key!r}")
    return res


def check_limits(raw: bytes, limits: dict) -> None:
    """LimitError, before anything is sent, if the device's published limits
    (info's `limits`) refuse `raw`. A PSBT the host cannot read is left to
    the device, which says what is wrong with it."""
    from . import psbt_raw

    if len(raw) > limits["psbt_bytes"]:
        raise LimitError(f"the PSBT has {len(raw):,} bytes; the device takes at most {limits['psbt_bytes']:,}")
    try:
        psbt = psbt_raw.parse_psbt(raw)
    except Exception:
        return
    for what, n in (("inputs", len(psbt.inputs)), ("outputs", len(psbt.outputs))):
        if n > limits[what]:
            raise LimitError(f"the PSBT has {n:,} {what}; the device signs at most {limits[what]:,}")


class Client:
    def __init__(self, port: str, timeout: float = 10.0):
        self.port = port
        self.t = Transport(port, timeout)
        try:
            info = self.info()
        except Exception:
            self.t.close()
            raise
        if info.get("protocol") != PROTOCOL:
            self.t.close()
            raise ProtocolError(
                f"device on {port} speaks protocol {info.get('protocol')!r}; this host speaks {PROTOCOL}"
            )
        self.limits = info["limits"]
        self.trail_at = info["trail"]["seq"]  # a session that changed the trail ends with a checkpoint
        # sign_psbt's two rounds for every ECDSA signature (docs/protocol.md, "Anti-exfil")
        self.anti_exfil = info.get("anti_exfil") == "ecdsa_s2c"
        self.on_prompt = None  # called with each prompt the device shows while a request waits (docs/protocol.md)
        from .discovery import remember

        remember(port, info)

    def __enter__(self):
        return self

    def _call(self, method: str, params: dict | None = None):
        return self._checkpointed(lambda: checked(method, self.t.call(method, params)))

    def _checkpointed(self, request):
        """request(); once more after a checkpoint if the device asks for one first."""
        try:
            return request()
        except DeviceError as e:
            if e.code != CHECKPOINT_DUE:
                raise
        self.checkpoint()
        return request()

    def __exit__(self, *exc):
        self.close(checkpoint=exc[0] is None)

    def close(self, checkpoint: bool = False):
        """checkpoint: first sign the trail's records this session added, if any."""
        try:
            if checkpoint:
                self.end_session()
        finally:
            self.t.close()

    def end_session(self, any_unsigned: bool = False):
        """A checkpoint if the trail changed since this client connected (or,
        `any_unsigned`, has any unsigned record) and the device can sign
        one (unlocked). Never raises: the session's work is done, and the
        next one signs what this one left."""
        try:
            info = self.t.call("info")
            trail = info.get("trail") or {}
            changed = any_unsigned or trail.get("seq") != self.trail_at
            if not info.get("locked") and changed and trail.get("unsigned"):
                self.checkpoint()
        except AmanatError:
            pass

    # -- the audit trail (docs/audit.md)
    def checkpoint(self, host_time: str | None = None) -> dict:
        """Have the device sign a checkpoint of its trail with its log key,
        the nonce fixed by our entropy (anti-exfil), and check it. The
        device's answer ({"seq", "head", "signed", ...}); signed False when
        the trail's last record is already a checkpoint."""
        from datetime import datetime, timezone

        from . import anti_exfil
        from .audit import checkpoint_digest

        rho = anti_exfil.new_entropy()
        first = checked("audit_checkpoint", self.t.call("audit_checkpoint", {
            "anti_exfil": "commit", "commitment": anti_exfil.commitment(rho)}))
        if not first.get("opening"):
            return first
        if host_time is None:
            host_time = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        res = checked("audit_checkpoint", self.t.call("audit_checkpoint", {
            "anti_exfil": "reveal", "entropy": rho, "host_time": host_time}))
        key = (self.t.call("info").get("trail") or {}).get("log_key")
        if not isinstance(key, str) or res.get("seq") != first["seq"] or not res.get("sig"):
            raise ProtocolError("the device's checkpoint answer is incomplete")
        try:
            anti_exfil.check(bytes.fromhex(key), checkpoint_digest(first["seq"], first["head"]), rho,
                             first["opening"], bytes.fromhex(res["sig"]))
        except anti_exfil.AntiExfilFailure as e:
            raise SignatureError(f"the device's checkpoint signature fails: {e.message}") from None
        return res

    def audit_key(self, status=None) -> dict:
        """The log key, shown on the device: {"log_key", "path", "fingerprint"}."""
        return self._long("audit_key", {}, status)

    def audit_exported(self, seq: int, head: str, status=None) -> dict:
        """Tell the device the trail is exported up to record `seq`; the officer
        acknowledges it on the device, which frees the archived records."""
        return self._long("audit_exported", {"seq": seq, "head": head}, status)

    def info(self) -> dict:
        return self._call("info")

    def get_xpub(self, path: str) -> str:
        """The xpub at a typed path (`h`, `H` or `'`), sent in `h` notation."""
        return self._call("get_xpub", {"path": normalize_path(path)})["xpub"]

    def get_descriptors(self, account: int) -> dict:
        return self._call("get_descriptors", {"account": account})

    def display_address(self, descriptor: str, status=None) -> str:
        return self._long("display_address", {"descriptor": descriptor}, status)["address"]

    def sign_message(self, message: bytes, path: str, status=None) -> str:
        params = {"message": message, "path": normalize_path(path)}
        return self._long("sign_message", params, status)["signature"]

    def audit_lines(self) -> list[bytes]:
        """The device's audit trail as written, one JSON record per line, oldest first."""
        out = bytearray()
        total = None
        while total is None or len(out) < total:
            res = self._call("audit_read", {"offset": len(out), "size": 4096})
            total = res["total"]
            if not res["data"]:
                break
            out += res["data"]
        return [line for line in bytes(out).split(b"\n") if line]

    def audit_trail(self) -> list[dict]:
        """Every record of the device's audit trail, oldest first."""
        from .audit import parse

        return parse(self.audit_lines())

    # -- registered multisig wallets and fee limits (docs/protocol.md)

    def register_wallet(self, name: str, descriptor: str, status=None) -> dict:
        """{"name", "descriptor" (the device's canonical form), "registration"}
        once the officer approves the policy and its cosigners."""
        return self._long("register_wallet", {"name": name, "descriptor": descriptor}, status)

    def list_wallets(self) -> list:
        return self._call("list_wallets")["wallets"]

    def get_wallet(self, name: str) -> dict:
        return self._call("get_wallet", {"name": name})

    def delete_wallet(self, name: str, status=None) -> None:
        self._long("delete_wallet", {"name": name}, status)

    def wallet_address(self, name: str, index: int, change: bool = False, status=None) -> str:
        params = {"name": name, "index": index, "change": change}
        return self._long("wallet_address", params, status)["address"]

    # -- the seed's lifecycle: the officer does everything on the device

    def change_pin(self, status=None) -> None:
        """The officer types the PIN and the new one twice on the device."""
        self._long("change_pin", {}, status)

    def backup_check(self, status=None) -> bool:
        """The officer types the PIN, then the backup, on the device: whether it matches."""
        return self._long("backup_check", {}, status)["matches"]

    def wipe(self, status=None) -> None:
        """Erase the seed and the registered wallets once the officer confirms
        on the device. The trail's records are signed first with this seed's
        log key, which no one can sign with afterwards (the wipe's own record
        is signed by the next seed's)."""
        self.end_session(any_unsigned=True)
        self._long("wipe", {}, status)

    def get_limits(self) -> dict:
        return self._call("get_limits")

    def set_limits(self, fee_percent_tenths: int, fee_max_sat: int, status=None) -> dict:
        params = {"fee_percent_tenths": fee_percent_tenths, "fee_max_sat": fee_max_sat}
        return self._long("set_limits", params, status)

    def sign_psbt(self, raw: bytes, progress=None, anti_exfil: bool = True) -> Signed:
        """Upload, have the officer review and sign, download, verify.
        SignatureError if the device changed anything but add signatures, or
        if one of them does not verify: no caller sees an unchecked PSBT.
        With `anti_exfil` (and a device that has it) every ECDSA signature
        goes through anti-exfil's two rounds and is checked against the
        host's entropy (AntiExfilFailure: nothing signed is returned).

        progress(stage, done, total): stage is "upload", "device" (done is
        what the device is doing: "reviewing", "review_tx", "signing"; total
        the device's [done, total] of it, or None), "download" or "verify"
        (done and total None)."""
        progress = progress or (lambda *a: None)
        check_limits(raw, self.limits)
        if anti_exfil and self.anti_exfil:
            done = self._anti_exfil([raw], lambda raws, params: self._psbt_round(raws[0], params, progress),
                                    lambda k: progress)
            if done is not None:
                return done[0][0]
        res, [signed] = self._psbt_round(raw, {}, progress)
        return self._checked(raw, signed, res, progress)

    def _psbt_round(self, raw: bytes, params: dict, progress):
        """Upload `raw`, sign_psbt with `params`, download: (the answer, with
        itself as its one "signed" entry, as _batch_round's; [the PSBT read back])."""
        res = self._long("sign_psbt", dict(params, sha256=self._upload(raw, progress)),
                         lambda busy, of: progress("device", busy, of))
        return dict(res, signed=[res]), [self._download(res, {}, progress)]

    def _anti_exfil(self, raws: list[bytes], do_round, step):
        """Sign `raws` (one PSBT, or a batch) in anti-exfil's two rounds:
        do_round(psbts, params) is one round on the device, (its answer,
        [each PSBT read back]); step(k) is PSBT k's progress. ([Signed],
        the second round's answer), or None if the device makes no ECDSA
        signature in them (or the host cannot read one: the device says why)."""
        from . import anti_exfil as ae
        from .errors import AmanatError, AntiExfilFailure
        from .psbt_raw import parse_maps

        fingerprint = self.info().get("fingerprint") or b""
        try:
            bases = [ae.stripped(parse_maps(raw)) for raw in raws]
        except Exception:
            return None
        wanted = [ae.wanted(base, fingerprint) for base in bases]
        if not any(wanted):
            return None
        book = ae.Book(fingerprint.hex())  # one record of this device's rounds for the whole signing
        keys = [hashlib.sha256(base.serialize()).hexdigest() for base in bases]
        rhos = [book.entropy(key, w) if w else {} for key, w in zip(keys, wanted)]

        def where(k):
            return f"PSBT {k} of the batch: " if len(raws) > 1 else ""

        res, answers = do_round([ae.with_commitments(b, r) for b, r in zip(bases, rhos)], {"anti_exfil": "commit"})
        opened = []
        for k, (base, r, one, answer) in enumerate(zip(bases, rhos, res["signed"], answers)):
            answer = parse_maps(answer, f"{where(k)}the device's first anti-exfil answer")
            if verify_new_signatures(base.serialize(), ae.stripped(answer).serialize()) != 0:
                raise AntiExfilFailure(f"{where(k)}the device signed in the first round, before it had the host's "
                                       "entropy")
            opened.append(ae.openings(answer, r))
            if len(opened[k]) != one.get("openings"):
                raise ProtocolError(f"{where(k)}the device reports {one.get('openings')} anti-exfil openings, its "
                                    f"answer holds {len(opened[k])}")
        try:
            res, signed = do_round([ae.with_entropy(b, r, o) for b, r, o in zip(bases, rhos, opened)],
                                   {"anti_exfil": "reveal"})
        except AmanatError as e:
            e.anti_exfil_aborted = book.aborted()  # the entropy is kept: the next try sends it again
            raise
        out = []
        for k, (base, r, o, one, got) in enumerate(zip(bases, rhos, opened, res["signed"], signed)):
            step(k)("verify", None, None)
            got = parse_maps(got, f"{where(k)}the PSBT returned by the device")
            try:
                checked_nonces = ae.check_signatures(base, got, r, o)
            except AntiExfilFailure as e:
                raise AntiExfilFailure(f"{where(k)}{e.reason}") from None
            s = self._checked(base.serialize(), ae.stripped(got).serialize(), one, step(k))
            out.append(Signed(s.psbt, s.signatures, s.review, checked_nonces))
        for key, w in zip(keys, wanted):
            if w:
                book.finished(key)
        return out, res

    def sign_batch(self, raws: list[bytes], progress=None, anti_exfil: bool = True) -> BatchSigned:
        """Upload every PSBT of `raws`, have the officer review the batch once
        and the device sign each; download and verify each (as sign_psbt).
        The device refuses the whole batch, before any screen, if it would
        refuse one of its PSBTs alone. With `anti_exfil` (and a device that
        has it) the batch is signed in anti-exfil's two rounds, as sign_psbt.

        progress(stage, done, total, k): as sign_psbt's, for PSBT k of the
        batch (None while the device shows the batch's screens)."""
        progress = progress or (lambda *a: None)
        most = self.limits.get("batch_psbts")
        if most is None:
            raise LimitError(f"the device on {self.port} does not sign batches (firmware too old)")
        if not 1 <= len(raws) <= most:
            raise LimitError(f"a batch of {len(raws)} PSBTs; the device signs 1 to {most} in one batch")
        from .psbt_raw import parse_maps

        inputs = 0
        for raw in raws:
            check_limits(raw, self.limits)
            try:
                inputs += len(parse_maps(raw).inputs)
            except Exception:
                pass  # the device names what is wrong with it
        if inputs > self.limits.get("batch_inputs", inputs):
            raise LimitError(f"the batch has {inputs:,} inputs; the device takes at most "
                             f"{self.limits['batch_inputs']:,} in one batch")
        if anti_exfil and self.anti_exfil:
            done = self._anti_exfil(raws, lambda psbts, params: self._batch_round(psbts, params, progress),
                                    lambda k: lambda stage, done, total: progress(stage, done, total, k))
            if done is not None:
                return BatchSigned(done[0], done[1]["review"])
        res, signed = self._batch_round(raws, {}, progress)
        out = []
        for k, (raw, one, got) in enumerate(zip(raws, res["signed"], signed)):
            out.append(self._checked(raw, got, one, lambda stage, done, total: progress(stage, done, total, k)))
        return BatchSigned(out, res["review"])

    def _batch_round(self, raws: list[bytes], params: dict, progress):
        """Upload `raws` as a batch, sign_batch with `params`, download each:
        (the answer, with each PSBT's checked; the PSBTs read back)."""
        digests = []
        for k, raw in enumerate(raws):
            digest = self._upload(raw, lambda stage, done, total: progress(stage, done, total, k))
            added = self._call("batch_add", {"index": k, "sha256": digest})
            if added != {"index": k, "count": k + 1}:
                raise ProtocolError(f"the device added PSBT {k} of the batch as {added}")
            digests.append(digest)
        where = {"k": None}

        def status(busy, of, at=None):
            where["k"] = at[0] if isinstance(at, list) and at else None
            progress("device", busy, of, where["k"])

        res = self._long("sign_batch", dict(params, sha256s=b"".join(digests)), status)
        if len(res["signed"]) != len(raws) or not all(isinstance(x, dict) for x in res["signed"]):
            raise ProtocolError(f"the device signed {len(res['signed'])} PSBTs of a batch of {len(raws)}")
        res["signed"] = [checked("sign_psbt", dict(one, review={})) for one in res["signed"]]
        got = []
        for k, one in enumerate(res["signed"]):
            got.append(self._download(one, {"index": k}, lambda stage, done, total: progress(stage, done, total, k)))
        return res, got

    def _upload(self, raw: bytes, progress) -> bytes:
        """Spool `raw` to the device; its SHA-256, as the device computed it."""
        digest = hashlib.sha256(raw).digest()
        first = min(len(raw), self.limits.get("chunk_bytes", 0))  # sent with psbt_begin when the device says how much
        begin = {"length": len(raw), "data": raw[:first]} if first else {"length": len(raw)}
        began = self._call("psbt_begin", begin)
        chunk = began["chunk_size"]
        if first:
            if began.get("received") != first:
                raise ProtocolError(f"the device took {began.get('received')} of the first {first} bytes")
            progress("upload", first, len(raw))
        for off in range(first, len(raw), chunk):
            self._call("psbt_chunk", {"offset": off, "data": raw[off : off + chunk]})
            progress("upload", min(off + chunk, len(raw)), len(raw))
        got = self._call("psbt_end")["sha256"]
        if got != digest:
            raise ProtocolError("the device received a different PSBT than was sent (hash differs)")
        return digest

    def _download(self, res: dict, params: dict, progress) -> bytes:
        """The signed PSBT `res` (sha256, length) describes, read back and checked."""
        out = bytearray()
        progress("download", 0, res["length"])
        while len(out) < res["length"]:
            data = self._call("psbt_read", {"offset": len(out), "size": 4096, **params})["data"]
            if not data:
                break
            out += data
            progress("download", len(out), res["length"])
        if hashlib.sha256(out).digest() != res["sha256"] or len(out) != res["length"]:
            raise ProtocolError("the signed PSBT read back does not match the device's hash")
        return bytes(out)

    def _checked(self, raw: bytes, signed: bytes, res: dict, progress) -> Signed:
        progress("verify", None, None)
        count = verify_new_signatures(raw, signed)
        if count != res["signatures"]:
            raise ProtocolError(f"the device reports {res['signatures']} signatures, the PSBT it returned adds {count}")
        return Signed(signed, count, res["review"])

    def _long(self, method: str, params: dict, status=None):
        """A request that waits for the officer: no overall timeout, but a
        ping every second; any frame from the device shows it is alive.
        status(busy, progress) reports what the device says it is doing. A
        device found idle while we wait never got the request, or its answer
        was lost: the request is sent again (the device answers a request it
        already served with the same answer) before we give up."""
        state = {"sent": 0.0, "pings": [], "idle": 0, "again": 0, "busy": None, "asks": []}

        def on_idle():
            now = time.monotonic()
            for aid in list(state["asks"]):
                msg = self.t.take_stray(aid)
                if msg is not None:
                    state["asks"].remove(aid)
                    shown = (msg.get("result") or {}).get("prompt") if isinstance(msg.get("result"), dict) else None
                    if isinstance(shown, dict) and self.on_prompt is not None:
                        self.on_prompt(shown)
            for pid in list(state["pings"]):
                msg = self.t.take_stray(pid)
                if msg is None:
                    continue
                state["pings"].remove(pid)
                res = msg.get("result") if isinstance(msg.get("result"), dict) else {}
                busy = res.get("busy")
                state["idle"] = state["idle"] + 1 if busy is None else 0
                if state["idle"] >= 3:
                    if state["again"] >= RESENDS:
                        raise TransportError(f"the device on {self.port} is not working on the {method} request")
                    state["again"] += 1
                    state["idle"] = 0
                    self.t.resend(state["rid"])
                if busy is not None and busy != state["busy"]:
                    state["asks"] = state["asks"][-2:] + [self.t.send("prompt", keep=False)]
                state["busy"] = busy
                if status is not None and busy is not None:
                    if "batch" in res:  # sign_batch's: which PSBT the device works on
                        status(busy, res.get("progress"), res["batch"])
                    else:
                        status(busy, res.get("progress"))
            if now - self.t.last_rx > PING_GRACE:
                raise TransportError(f"the device on {self.port} stopped answering")
            if now - state["sent"] >= PING_EVERY:
                state["pings"] = state["pings"][-4:] + [self.t.send("ping", keep=False)]
                state["sent"] = now

        def request():
            state["rid"] = self.t.send(method, params)
            try:
                return checked(method, self.t.wait(state["rid"], None, on_idle, strict=False))
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into one by the CLIs
                self.cancel(state["rid"])
                raise

        return self._checkpointed(request)

    def cancel(self, rid: int, timeout: float = 5.0) -> bool:
        """Have the device take down the prompt of request `rid` (the officer
        interrupted the command): True once the request is answered (REJECTED
        "cancelled: ..." or whatever it had come to). Never raises: the line
        may be gone too."""
        try:
            self.t.send("cancel", keep=False)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.t.take_stray(rid) is not None:
                    return True
                for msg in self.t.receive():
                    if msg.get("id") == rid:
                        return True
        except Exception:
            pass
        return False
