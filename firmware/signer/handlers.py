"""Request handlers: one function per wire method (docs/protocol.md).

Each takes the app and its typed params and returns the result map, or
raises a DeviceError naming what is wrong.
"""

import gc
import os
from binascii import b2a_base64, hexlify

from embit import bip39, compact, ec, hashes

from . import capacity, keyexpr, screens, scripts
from .desc_checksum import add_checksum, strip_checksum
from .errors import BadParams, Refused, StorageError, UploadError
from .keyexpr import HARDENED, format_path, parse_path
from .secrets import wipe
from .spool import CHUNK, file_sha256

READ_MAX = 4096
MESSAGE_MAX = 1024


def ping(app, p):
    return {"busy": None}


def info(app, p):
    return app.info()


def prompt(app, p):
    return {"prompt": app._prompt()}


def cancel(app, p):
    # Served while busy by the request loop; idle, there is nothing to cancel.
    return {"cancelled": False}


def get_xpub(app, p):
    path = parse_path(p.text("path", limit=100))
    return {"xpub": app.keystore.xpub(format_path(path))}


_DESC = (("pkh(%s)", 44), ("sh(wpkh(%s))", 49), ("wpkh(%s)", 84), ("tr(%s)", 86))


def get_descriptors(app, p):
    account = p.uint("account", limit=HARDENED - 1)
    ks = app.keystore
    coin = scripts.coin_type(ks.network)
    fp = hexlify(ks.fingerprint).decode()
    out = {"receive": [], "internal": []}
    for template, purpose in _DESC:
        origin = [purpose + HARDENED, coin + HARDENED, account + HARDENED]
        xpub = ks.xpub(format_path(origin))
        for chain, name in ((0, "receive"), (1, "internal")):
            key = "[%s/%s]%s/%d/*" % (fp, keyexpr.format_steps(origin), xpub, chain)
            out[name].append(add_checksum(template % key))
    return out


_KINDS = (("sh(wpkh(", "p2sh-p2wpkh"), ("wpkh(", "p2wpkh"), ("pkh(", "p2pkh"), ("tr(", "p2tr"))
_WHO = "the descriptor's key"


def _single_key(text):
    """(fingerprint, full path, PublicKey) of "[fp/origin]KEY[/a/b...]"
    naming one key: a hex public key (x-only for tr), or an xpub/tpub
    followed by unhardened steps to one address."""
    e = keyexpr.split_key(_WHO, text)
    rest = e.rest.split("/")[1:]
    if any([("*" in r or "<" in r) for r in rest]):
        raise BadParams("descriptor must name one address (no * or <a;b>)")
    steps = keyexpr.parse_steps(rest, "path")
    if any([i >= HARDENED for i in steps]):
        raise BadParams("hardened steps after the key cannot be checked")
    if e.key[:4] in ("xpub", "tpub"):
        pub = keyexpr.parse_xpub(e.who, e.key).derive(steps).key
    elif steps:
        raise BadParams("%s: derivation steps after a plain public key" % e.who)
    else:
        try:
            raw = bytes.fromhex(e.key)
            pub = ec.PublicKey.from_xonly(raw) if len(raw) == 32 else ec.PublicKey.parse(raw)
        except MemoryError:
            raise
        except Exception:
            raise BadParams("%s: does not parse" % e.who)
    return e.fingerprint, e.origin + steps, pub


def display_address(app, p):
    text = p.text("descriptor", limit=4000)
    ks = app.keystore
    body = strip_checksum(text)
    if "multi" in body:
        from .wallet_methods import registered_at_index, show_wallet_address

        w, change, index = registered_at_index(app, text)
        return show_wallet_address(app, w, change, index)
    kind = None
    for prefix, k in _KINDS:
        if body.startswith(prefix):
            kind = k
            inner = body[len(prefix) : len(body) - prefix.count("(")]
            if body[len(body) - prefix.count("(") :] != ")" * prefix.count("("):
                raise BadParams("descriptor is not closed")
            break
    if kind is None or "," in inner:
        raise BadParams("only pkh, sh(wpkh), wpkh and single-key tr descriptors name one of our addresses")
    fp, path, claimed = _single_key(inner)
    if fp != ks.fingerprint:
        raise BadParams("the descriptor's key is not this device's (fingerprint differs)")
    if len(path) > keyexpr.MAX_DEPTH:
        raise BadParams("path is deeper than %d levels" % keyexpr.MAX_DEPTH)
    ours = ks.root.derive(path).key
    if claimed.xonly() != ours.xonly() or (kind != "p2tr" and claimed.sec() != ours.sec()):
        raise BadParams("the descriptor's key is not this device's key at %s" % format_path(path))
    address = scripts.script_for(kind, ours).address(ks.network)
    unusual = not scripts.is_standard_path(path, kind, scripts.coin_type(ks.network))
    app.ui.require(screens.display_address(address, format_path(path), unusual),
                   "the officer did not confirm the address")
    return {"address": address}


def psbt_begin(app, p):
    length = p.uint("length")
    if not 1 <= length <= capacity.MAX_PSBT_BYTES:
        raise BadParams("PSBT length must be 1..%d bytes" % capacity.MAX_PSBT_BYTES)
    app.drop_signed()  # its download is over: its flash is the new upload's
    capacity.check_upload(app.board.flash_root, length)
    app.read_buf = None  # a new upload: the last download's buffer would split the heap under it
    gc.collect()
    app.upload.begin(length, app.board.ticks_ms())
    if "data" not in p.p:
        return {"chunk_size": CHUNK}
    # the first chunk may come with the request: one envelope less on the line
    received = app.upload.chunk(0, p.data("data", limit=CHUNK), app.board.ticks_ms())
    return {"chunk_size": CHUNK, "received": received}


def psbt_chunk(app, p):
    received = app.upload.chunk(p.uint("offset"), p.data("data", limit=CHUNK), app.board.ticks_ms())
    return {"received": received}


def psbt_end(app, p):
    return {"sha256": app.upload.end()}


def sign_psbt(app, p):
    from . import review
    from .wallet_methods import limits

    digest = p.data("sha256", size=32)
    rounds = p.text("anti_exfil", default="", limit=8) or None
    if rounds not in (None, "commit", "reveal"):
        raise BadParams('anti_exfil must be "commit" or "reveal"')
    if rounds != "reveal":
        app.heap.start()  # the peak of a signing covers both anti-exfil rounds

    def busy(what):
        return lambda *a: app.pump(what, *a)

    if rounds == "reveal":
        return _reveal(app, digest, busy)
    app.drop_ae_round()
    app.upload.check(digest, busy("checking"))
    ks = app.keystore
    app.signed_length = None
    app.read_buf = None  # the review and the signing need that memory
    registry = app.registry()
    with open(app.upload.path, "rb") as f:
        shown, plan = _on_flash(_review, app, review.Reviewer, f, ks, registry, limits(app), busy("reviewing"),
                                anti_exfil=rounds == "commit", psbt_sha256=hexlify(digest).decode())
    # What is signed must be what was reviewed.
    app.upload.check(digest, busy("checking"))
    if rounds == "commit":
        return _commit(app, plan, registry, shown)
    count = sign_file(app, app.upload.path, app.signed_path, plan, registry)
    return _signed(app, count, shown)


def _signed(app, count, shown, **more):
    app.signed_length = os.stat(app.signed_path)[6]
    res = {"sha256": file_sha256(app.signed_path), "length": app.signed_length, "signatures": count,
           "review": shown}
    res.update(more)
    return res


def _commit(app, plan, registry, shown):
    """Anti-exfil's first round, after the officer's approval: the openings
    of every ECDSA signature into the answer, nothing signed; the round is
    kept (the PSBT's hashes without anti-exfil fields) for the second."""
    count, digests = commit_round(app, app.upload.path, app.signed_path, app.ae_spool_path, plan, registry)
    # Nothing of the review is kept for the second round (it reviews the
    # same PSBT again for its plan, without a screen): objects kept from the
    # middle of the heap would split it, and the download needs 4 KB blocks.
    app.ae_round = {"count": count, "digests": digests, "at": app.board.ticks_ms()}
    return _signed(app, 0, shown, openings=count)


def commit_round(app, src_path, dst_path, spool_path, plan, registry):
    """The first anti-exfil round of the reviewed PSBT at `src_path` into
    `dst_path`, its commitments and openings spooled to `spool_path`: (the
    number of openings, [the hashes without anti-exfil fields of what was
    sent and of the answer]: a second round must be one of them)."""
    from . import anti_exfil

    with open(spool_path, "wb") as spool:
        commit = anti_exfil.Commit(spool)
        sign_file(app, src_path, dst_path, plan, registry, rounds=commit)
    return commit.count, [stripped_hash(src_path), stripped_hash(dst_path)]


def stripped_hash(path):
    """SHA-256 of the PSBT at `path` without its anti-exfil fields."""
    from .anti_exfil import PREFIX
    from .psbt_view import sha256_without

    with open(path, "rb") as f:
        return _on_flash(sha256_without, f, PREFIX)


def _reveal(app, digest, busy):
    """Anti-exfil's second round: the PSBT of the first round (its answer or
    what was sent, with the host's entropy added), reviewed again for its
    plan without a screen and signed. One try: whatever fails, the round is
    over."""
    from . import anti_exfil, review
    from .wallet_methods import limits

    pending = app.ae_round
    if pending is None or "batch" in pending:
        raise Refused("no first anti-exfil round to finish (it ended, timed out or another request came "
                      "between): sign the PSBT again")
    app.ae_round = None
    try:
        app.upload.check(digest, busy("checking"))
        if stripped_hash(app.upload.path) not in pending["digests"]:
            raise Refused("the PSBT is not the one approved in the first anti-exfil round")
        app.signed_length = None
        app.read_buf = None
        registry = app.registry()
        with open(app.upload.path, "rb") as f:
            summary, plan = _on_flash(review.Reviewer(f, app.keystore, registry, limits(app),
                                                      busy("reviewing")).run)
        shown = summary.to_dict()
        shown["anti_exfil"] = True
        summary = None
        with open(app.ae_spool_path, "rb") as spool:
            count = sign_file(app, app.upload.path, app.signed_path, plan, registry,
                              rounds=anti_exfil.Reveal(spool, pending["count"]))
    finally:
        app.drop_ae_round()
    return _signed(app, count, shown)


def sign_file(app, src_path, dst_path, plan, registry, rounds=None):
    """Sign the reviewed PSBT at `src_path` by `plan` into `dst_path` (the
    signatures spooled beside it); the number of signatures. rounds: an
    anti-exfil round (psbt_signer)."""
    from . import psbt_signer

    sig_path = dst_path + ".sigs"

    def progress(i, n):
        app.pump("signing", i, n)

    with open(src_path, "rb") as src:
        with open(dst_path, "wb") as dst:
            with open(sig_path, "w+b") as sigs:
                count = _on_flash(psbt_signer.sign_psbt_stream, src, dst, app.keystore, plan, registry,
                                  progress=progress, sig_stream=sigs, rounds=rounds)
    os.remove(sig_path)
    return count


def _review(app, reviewer, *args, anti_exfil=None, psbt_sha256=None):
    """The officer's review, screen by screen (review_screens). (summary dict,
    plan). anti_exfil: whether the ECDSA signatures get anti-exfil's rounds
    (the totals screen says so), None where that is not told; psbt_sha256:
    the hash of the PSBT, for the trail."""
    rv = reviewer(*args)
    summary, plan = rv.run()
    shown = summary.to_dict()
    if anti_exfil is not None:
        shown["anti_exfil"] = anti_exfil
    warning = app.trail_warning()
    if warning is not None:
        shown["warnings"].append(warning)
    for screen in review_screens(rv, shown if psbt_sha256 is None else dict(shown, psbt_sha256=psbt_sha256)):
        app.ui.require(screen, "the officer rejected the transaction")
    return shown, plan


def review_screens(rv, shown):
    """The screens of a transaction review, in order: the outputs page by page
    when they do not fit on one screen (re-read from the PSBT by the
    Reviewer `rv`), then the totals from `shown` (its Summary.to_dict())."""
    from .review import PAGE

    if "proof" in shown:
        yield screens.proof_of_reserves(shown)
        return
    total = shown["outputs"]
    if total > PAGE:
        page = []
        for entry in rv.outputs():
            page.append(entry)
            if len(page) == PAGE or entry["n"] == total - 1:
                yield screens.review_outputs(page, total)
                page = []
    yield screens.review_tx(shown)


def _on_flash(fn, *args, **kw):
    # A PSBT that does not parse is already BadPsbt (psbt_view) and a rule's
    # refusal Refused; a flash failure is STORAGE. Anything else is a bug of
    # ours and goes up as it is: logged, and answered INTERNAL, never told to
    # the officer as a malformed PSBT.
    try:
        return fn(*args, **kw)
    except OSError as e:
        raise StorageError("flash failed while working on the PSBT: %s" % (e,))


def psbt_read(app, p):
    """A piece of the signed PSBT, or with `index` of PSBT `index` of the
    signed batch."""
    offset = p.uint("offset")
    size = p.uint("size", limit=READ_MAX)
    if "index" in p.p:
        index = p.uint("index")
        if index >= len(app.batch.signed):
            raise UploadError("no signed PSBT %d in the batch (%d signed)" % (index, len(app.batch.signed)))
        path, length = app.batch.signed_path(index), app.batch.signed[index]
    elif app.signed_length is None:
        raise UploadError("no signed PSBT to read")
    else:
        path, length = app.signed_path, app.signed_length
    with open(path, "rb") as f:
        f.seek(min(offset, length))
        if app.read_buf is None:
            # One 4 KB block for the whole download, taken once the review's
            # memory is free, instead of a fresh one per chunk: a fragmented
            # heap has few such blocks, and each copy wants another.
            gc.collect()
            app.read_buf = memoryview(bytearray(READ_MAX))
        n = f.readinto(app.read_buf[:size])
    data = app.read_buf[:n]
    if offset + n >= length:
        app.read_buf = None  # the last chunk: freed once it is sent
    return {"data": data}


def audit_read(app, p):
    """A piece of the device's audit trail (every answered screen, one JSON
    line each), read as one stream across the board's files, oldest first."""
    offset = p.uint("offset")
    size = p.uint("size", limit=READ_MAX)
    parts = []
    for path in app.board.audit_files():
        try:
            parts.append((path, os.stat(path)[6]))
        except OSError:
            pass
    total = sum(n for _, n in parts)
    data = b""
    for path, n in parts:
        if offset < n and len(data) < size:
            with open(path, "rb") as f:
                f.seek(offset)
                data += f.read(size - len(data))
        offset = max(0, offset - n)
    return {"data": data, "total": total}


def sign_message(app, p):
    message = p.data("message", limit=MESSAGE_MAX)
    path = parse_path(p.text("path", limit=100))
    ks = app.keystore
    kind, header = message_kind(path)
    key = ks.root.derive(path)
    address = scripts.script_for(kind, key.key).address(ks.network)
    # The same warning as display_address's for the same path (screens.message_text: what is shown)
    unusual = not scripts.is_standard_path(path, kind, scripts.coin_type(ks.network))
    app.ui.require(screens.sign_message(format_path(path), address, message, unusual),
                   "the officer rejected the message")
    import secp256k1
    data = b"\x18Bitcoin Signed Message:\n" + compact.to_bytes(len(message)) + message
    digest = hashes.double_sha256(data)
    sig = secp256k1.ecdsa_sign_recoverable(digest, key.key.secret)
    rs, recid = secp256k1.ecdsa_recoverable_signature_serialize_compact(sig)
    out = bytes([header + recid]) + rs
    return {"signature": b2a_base64(out).decode().strip()}


# BIP137 header bases: the address type a signature is for, as Trezor and
# Electrum write them (Bitcoin Core's signmessage knows only P2PKH).
BIP137 = {"p2pkh": 31, "p2sh-p2wpkh": 35, "p2wpkh": 39}


def message_kind(path):
    """(address type, BIP137 header base) a key at `path` signs messages for:
    the type its BIP44/49/84 purpose implies, P2PKH for other paths. BIP86
    keys (taproot) have no BIP137 form: BadParams."""
    purpose = path[0] if path else None
    if purpose == 86 + HARDENED:
        raise BadParams("taproot keys (m/86h/...) have no BIP137 message signature (BIP-322 is not supported)")
    kind = {49 + HARDENED: "p2sh-p2wpkh", 84 + HARDENED: "p2wpkh"}.get(purpose, "p2pkh")
    return kind, BIP137[kind]


def _confirm_pin(app, what):
    """(PIN, secret, meta): the PIN typed now and the seed it opened again;
    the caller wipes both. A wrong PIN counts as any other (REJECTED naming
    the attempts left; the seed is erased at the limit)."""
    from .errors import Rejected
    from .storage import MAX_PIN_ATTEMPTS, WrongPin

    pin = app.ui.ask_text(screens.confirm_pin(what, None, MAX_PIN_ATTEMPTS - app.storage.pin_failures()))
    try:
        secret, meta = app.storage.unseal(pin)
    except WrongPin as e:
        wipe(pin)
        wiped = not app.storage.initialized()
        app.record_pin(what, "wiped" if wiped else "wrong", e.left)
        if wiped:
            app.record_wiped("the last PIN attempt was wrong")
            app.forget_seed()
        raise Rejected(str(e))
    app.record_pin(what, "right")
    return pin, secret, meta


def change_pin(app, p):
    """The officer types the PIN, then the new one twice, on the device."""
    old, secret, meta = _confirm_pin(app, "change the PIN")  # checked (and counted) before a new PIN is asked for
    wipe(old)
    try:
        new = app.choose_pin(screens.new_pin)
        try:
            app.storage.reseal(secret, meta, new)
        finally:
            wipe(new)
    finally:
        wipe(secret)
    return {}


def backup_check(app, p):
    """The officer types the backup (the BIP39 words, or enough SLIP39
    shares) on the device; it compares it with the sealed seed, shows the
    outcome and answers {"matches": bool}. Nothing of the backup leaves it."""
    pin, secret, meta = _confirm_pin(app, "check the backup")
    wipe(pin)
    try:
        if meta is None:
            words = app.ui.ask_text(screens.check_words(None))
            try:
                typed = bytearray(bip39.mnemonic_to_bytes(" ".join(words.decode().split())))
            except Exception:
                typed = bytearray()
            finally:
                wipe(words)
            what = "words"
            matches = bytes(typed) == bytes(secret)
            wipe(typed)
        else:
            ems, typed_meta = app.recover_shares(screens.check_share)
            what = "shares"
            matches = bytes(ems) == bytes(secret) and typed_meta == meta
            wipe(ems)
    finally:
        wipe(secret)
    app.ui.confirm(screens.backup_result(matches, what))
    return {"matches": matches}


def wipe_device(app, p):
    """Erase the seed and the registered wallets once the officer confirms
    on the device (never auto-approved); the device then starts its setup."""
    from .errors import Rejected

    fp = hexlify(app.keystore.fingerprint).decode()
    if not app.ui.confirm(screens.wipe_device(fp), auto=False):
        raise Rejected("the officer did not confirm the wipe")
    app.registry().erase_all()
    app.storage.erase()
    app.record_wiped("the officer erased the device")
    app.forget_seed()
    return {}


# ---- the audit trail (audit.py, docs/audit.md)


def audit_key(app, p):
    """The log key that signs the trail's checkpoints, shown on the device."""
    from .audit import LOG_KEY_PATH, key_fingerprint

    pub = app.log_key().key.sec()
    key = hexlify(pub).decode()
    app.ui.require(screens.audit_key(key, LOG_KEY_PATH), "the officer did not confirm the log key")
    return {"log_key": key, "path": LOG_KEY_PATH, "fingerprint": key_fingerprint(pub)}


def audit_checkpoint(app, p):
    """A checkpoint: the log key's signature over the trail's seq and head,
    in anti-exfil's two rounds (the host's commitment, then its entropy),
    written into the trail as a record. Nothing to sign (the last record is
    a checkpoint) answers {"seq", "head", "signed": False}."""
    from . import anti_exfil
    from .audit import checkpoint_digest

    t = app.trail
    rounds = p.text("anti_exfil", limit=8)
    if rounds == "commit":
        commitment = p.data("commitment", size=32)
        app.checkpoint_round = None
        if t.unsigned() == 0:
            return {"seq": t.seq, "head": t.prev, "signed": False}
        key = app.log_key()
        opening = anti_exfil.signer_commit(key.key.secret, checkpoint_digest(t.seq, t.prev), commitment)
        app.checkpoint_round = (t.seq, t.prev, bytes(commitment), opening)
        return {"seq": t.seq, "head": t.prev, "opening": opening}
    if rounds != "reveal":
        raise BadParams('anti_exfil must be "commit" or "reveal"')
    entropy = p.data("entropy", size=32)
    host_time = p.text("host_time", default="", limit=64)
    pending, app.checkpoint_round = app.checkpoint_round, None
    if pending is None:
        raise Refused("no checkpoint commitment to finish: send its first round again")
    seq, head, commitment, opening = pending
    if (t.seq, t.prev) != (seq, head):
        raise Refused("the trail changed after the checkpoint's first round (now at record %d): start again" % t.seq)
    sig, again = anti_exfil.sign(app.log_key().key.secret, checkpoint_digest(seq, head), entropy, commitment)
    if again != opening:
        raise Refused("the nonce differs from the first round's opening")
    der = hexlify(sig.serialize()).decode()
    rec = {"screen": "checkpoint", "covers_seq": seq, "covers_head": head, "sig": der,
           "ae_opening": hexlify(opening).decode(), "ae_entropy": hexlify(entropy).decode()}
    if host_time:
        rec["host_time"] = host_time  # as the host says: the device has no clock
    app.record(rec)
    return {"seq": seq, "head": head, "signed": True, "sig": der, "record_seq": t.seq}


def audit_exported(app, p):
    """The officer acknowledges on the device that a host exported the
    trail up to record `seq` (whose line hash is `head`): the archive file,
    if every record in it is exported, is freed."""
    t = app.trail
    seq = p.uint("seq")
    head = p.text("head", limit=64)
    if t.line_hash(seq) != head:
        raise Refused("record %d of the trail is not the one exported (its hash differs, or the trail does not "
                      "hold it)" % seq)
    if t.archive_last is None or t.archive_last > seq:
        raise Refused("nothing to free: the archived records go up to %s; export the trail again"
                      % ("no archive" if t.archive_last is None else "record %d" % t.archive_last))
    freed = t.archive_size()
    app.ui.require(screens.audit_exported(seq, head, freed), "the officer did not acknowledge the export")
    freed = t.free_exported(seq)
    return {"freed": freed, "trail": t.to_dict()}


def _all_methods():
    from .batch import METHODS as batch_methods
    from .wallet_methods import METHODS as wallet_methods

    m = dict(_METHODS)
    m.update(wallet_methods)
    m.update(batch_methods)
    return m


# Requests without an effect: their answers (a chunk of a file) are not kept
# for a replay, which would hold a second 4 KB block while the next is built;
# a resent read is simply served again.
READS = ("psbt_read", "audit_read")

_METHODS = {
    "ping": (ping, ()),
    "info": (info, ()),
    "cancel": (cancel, ()),
    "prompt": (prompt, ()),
    "get_xpub": (get_xpub, ("path",)),
    "get_descriptors": (get_descriptors, ("account",)),
    "display_address": (display_address, ("descriptor",)),
    "psbt_begin": (psbt_begin, ("length", "data")),
    "psbt_chunk": (psbt_chunk, ("offset", "data")),
    "psbt_end": (psbt_end, ()),
    "sign_psbt": (sign_psbt, ("sha256", "anti_exfil")),
    "psbt_read": (psbt_read, ("offset", "size", "index")),
    "sign_message": (sign_message, ("message", "path")),
    "audit_read": (audit_read, ("offset", "size")),
    "change_pin": (change_pin, ()),
    "backup_check": (backup_check, ()),
    "wipe": (wipe_device, ()),
    "audit_key": (audit_key, ()),
    "audit_checkpoint": (audit_checkpoint, ("anti_exfil", "commitment", "entropy", "host_time")),
    "audit_exported": (audit_exported, ("seq", "head")),
}

# Requests that sign or change what the device holds: refused while the
# trail is full or a checkpoint is due (app._check_trail).
GATED = ("sign_psbt", "sign_batch", "sign_message", "register_wallet", "delete_wallet", "set_limits",
         "change_pin")
# Requests whose refusals are recorded, and whose being cut off by a power
# loss is told at the next start.
RECORDED = GATED + ("batch_add", "display_address", "wallet_address", "backup_check", "wipe", "audit_key", "audit_checkpoint",
                    "audit_exported")

METHODS = _all_methods()
