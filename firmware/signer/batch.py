"""Batches: several PSBTs reviewed as one and signed after one approval
(docs/protocol.md, "Batches").

Each PSBT is uploaded as usual and then moved into the batch (batch_add).
sign_batch reviews every PSBT alone, by the rules a single signing applies,
before any screen: one that would be refused alone fails the batch, and
nothing is signed. The officer then sees the batch's totals (transactions,
inputs, per-destination totals, fee, change per wallet, every warning) and
approves once; each PSBT is checked against its hash again, reviewed again
for its signing plan (so that the memory held does not grow with the batch)
and signed into its own file, read back with psbt_read's `index`.
"""

import gc
import os

from . import capacity, screens
from .errors import BadParams, DeviceError, Refused, UploadError
from .capacity import BATCH_DESTINATIONS as MAX_DESTINATIONS
from .capacity import BATCH_INPUTS as MAX_INPUTS
from .capacity import BATCH_PSBTS as MAX_PSBTS
from .capacity import BATCH_WARNINGS as MAX_WARNINGS
from .spool import file_sha256


class Batch:
    """The PSBTs of the batch being assembled or signed, in flash, by hash."""

    def __init__(self, root):
        self.root = root
        self.digests = []
        self.lengths = []
        self.signed = []  # lengths of the signed copies, once sign_batch is done

    def path(self, i):
        return "%s/batch%d.psbt" % (self.root, i)

    def signed_path(self, i):
        return "%s/batch%d.signed.psbt" % (self.root, i)

    def clear(self):
        for i in range(MAX_PSBTS):
            for p in (self.path(i), self.signed_path(i), self.signed_path(i) + ".sigs"):
                try:
                    os.remove(p)
                except OSError:
                    pass
        self.digests = []
        self.lengths = []
        self.signed = []

    def add(self, index, upload, digest):
        """Move the complete upload with this hash into the batch as PSBT
        `index` (0 starts a new batch, dropping any earlier one)."""
        if index == 0:
            self.clear()
        elif index != len(self.digests) or self.signed:
            raise BadParams("batch index %d: the batch on the device has %d PSBTs%s"
                            % (index, len(self.digests), " and is signed" if self.signed else ""))
        if index >= MAX_PSBTS:
            raise BadParams("a batch has at most %d PSBTs" % MAX_PSBTS)
        upload.check(digest)
        if digest in self.digests:
            raise BadParams("PSBT %d of the batch is the same as PSBT %d" % (index, self.digests.index(digest)))
        # The signed copies are written next to the uploads: room for all of them.
        capacity.check_batch(self.root, sum(self.lengths) + upload.length)
        upload.move_to(self.path(index))
        self.digests.append(digest)
        self.lengths.append(upload.length)
        return {"index": index, "count": len(self.digests)}

    def check(self, k, progress=None):
        """UploadError unless PSBT k is in flash unchanged."""
        if file_sha256(self.path(k), progress) != self.digests[k]:
            raise UploadError("PSBT %d of the batch changed in flash" % k)


class Totals:
    """The batch as the officer approves it: bounded whatever the PSBTs hold
    (at most MAX_DESTINATIONS addresses and MAX_WARNINGS warnings; a batch
    with more is refused, to be signed in smaller batches)."""

    def __init__(self, count):
        self.count = count
        self.inputs = 0  # inputs signed
        self.taproot = 0  # of them, by BIP340
        self.all_inputs = 0
        self.outputs = 0
        self.sent_sat = 0
        self.fee_sat = 0
        self.vsize = 0
        self.destinations = []  # [address, sat, outputs]: a list keeps the order on every port
        self.change = []  # [owner text, sat, outputs]
        self.warnings = []

    def add(self, k, summary, outputs):
        """PSBT k's Summary and its outputs (Reviewer.outputs())."""
        self.all_inputs += summary.inputs
        if self.all_inputs > MAX_INPUTS:
            raise Refused("the batch has more than %d inputs: sign it in smaller batches" % MAX_INPUTS)
        self.inputs += summary.signing
        self.taproot += summary.taproot
        self.outputs += summary.outputs
        self.fee_sat += summary.fee_sat
        self.vsize += summary.vsize
        for w in summary.warnings:
            self._warn("transaction %d: %s" % (k, w))
        owner = "wallet " + summary.wallet if summary.wallet else "this device's " + summary.account
        for e in outputs:
            if e["change"]:
                _tally(self.change, owner, e["amount_sat"], None)
                continue
            self.sent_sat += e["amount_sat"]
            _tally(self.destinations, e["address"], e["amount_sat"], MAX_DESTINATIONS)
            if e.get("warning"):
                self._warn("transaction %d: %s" % (k, e["warning"]))
        gc.collect()

    def _warn(self, text):
        if text in self.warnings:
            return
        if len(self.warnings) >= MAX_WARNINGS:
            raise Refused("the batch has more than %d warnings: too many to review at once; "
                          "sign its transactions in smaller batches" % MAX_WARNINGS)
        self.warnings.append(text)

    def to_dict(self):
        return {"transactions": self.count, "inputs": self.inputs, "taproot": self.taproot, "outputs": self.outputs,
                "sent_sat": self.sent_sat, "fee_sat": self.fee_sat, "vsize": self.vsize,
                "destinations": [{"address": a, "amount_sat": s, "outputs": n} for a, s, n in self.destinations],
                "change": [{"to": o, "amount_sat": s, "outputs": n} for o, s, n in self.change],
                "warnings": self.warnings}


def _tally(rows, key, sat, most):
    for row in rows:
        if row[0] == key:
            row[1] += sat
            row[2] += 1
            return
    if most is not None and len(rows) >= most:
        raise Refused("the batch pays more than %d addresses: too many to review at once; "
                      "sign its transactions in smaller batches" % most)
    rows.append([key, sat, 1])


def _spent_twice(batch, candidates, progress):
    """Refused if two PSBTs of the batch spend the same coin: the coins the
    shared filter saw possibly twice, looked up in every PSBT (one pass)."""
    if not candidates:
        return
    from .psbt_view import open_view

    owner = {}
    n = len(batch.digests)
    for k in range(n):
        with open(batch.path(k), "rb") as f:
            view = open_view(f)
            for j in range(view.num_inputs):
                progress(k, n)
                p = view.prevout(j)
                key = (bytes(p.txid), p.vout)
                if key in candidates:
                    if key in owner and owner[key][0] != k:
                        raise Refused("PSBT %d input %d and PSBT %d input %d of the batch spend the same coin: "
                                      "they cannot both confirm" % (owner[key][0], owner[key][1], k, j))
                    owner[key] = (k, j)


def batch_screens(shown, digests):
    """The screens of a batch review (`shown`: Totals.to_dict()): the
    destinations page by page when they do not fit on the last screen,
    then the totals."""
    from .review import PAGE

    dests = shown["destinations"]
    if len(dests) > PAGE:
        for first in range(0, len(dests), PAGE):
            yield screens.batch_destinations(dests[first : first + PAGE], first, len(dests))
    yield screens.review_batch(shown, digests, len(dests) > PAGE)


def batch_add(app, p):
    return app.batch.add(p.uint("index", limit=MAX_PSBTS), app.upload, p.data("sha256", size=32))


def sign_batch(app, p):
    from . import handlers, review
    from .wallet_methods import limits

    blob = p.data("sha256s", limit=32 * MAX_PSBTS)
    rounds = p.text("anti_exfil", default="", limit=8) or None
    if rounds not in (None, "commit", "reveal"):
        raise BadParams('anti_exfil must be "commit" or "reveal"')
    batch = app.batch
    digests = batch.digests
    same = len(blob) == 32 * len(digests) and all([blob[32 * k : 32 * k + 32] == d for k, d in enumerate(digests)])
    if not digests or not same or batch.signed:
        raise UploadError("the device holds no unsigned batch of these PSBTs (%d hashes sent, %d PSBTs held)"
                          % (len(blob) // 32, len(batch.digests)))
    if rounds == "reveal":
        return _reveal_batch(app)
    app.drop_ae_round()
    app.heap.start()
    app.signed_length = None
    app.read_buf = None
    n = len(digests)
    ks = app.keystore
    registry = app.registry()
    lim = limits(app)
    totals = Totals(n)

    def busy(what):
        return lambda *a: app.pump(what, *a)

    seen = review.Prevouts([])  # the coins the whole batch spends

    def reviewed(k, f, totals):
        # Into `totals` (the first pass), or the signing plan (the second):
        # nothing else of the review outlives it. A refusal names the PSBT it
        # is about; its type (REFUSED, BAD_PSBT) stays.
        try:
            rv = review.Reviewer(f, ks, registry, lim, busy("reviewing"), seen if totals is not None else None)
            summary, plan = rv.run()
            if summary.proof is not None:
                raise Refused("a proof of reserves is signed on its own (sign_psbt), not in a batch")
            if totals is None:
                return plan
            plan = None
            totals.add(k, summary, rv.outputs())
        except DeviceError as e:
            raise e.__class__("PSBT %d of the batch: %s" % (k, e.message))

    # 1. Every PSBT reviewed alone before anything is shown or signed.
    for k in range(n):
        app.batch_at = [k, n]
        batch.check(k, busy("checking"))
        with open(batch.path(k), "rb") as f:
            handlers._on_flash(reviewed, k, f, totals)
        gc.collect()
    handlers._on_flash(_spent_twice, batch, seen.candidates, busy("reviewing"))
    seen = None
    app.batch_at = None
    shown = totals.to_dict()
    shown["anti_exfil"] = rounds == "commit"
    for screen in batch_screens(shown, digests):
        app.ui.require(screen, "the officer rejected the batch")
    screen = shown = None  # rebuilt for the answer: not kept through the signing
    gc.collect()
    # 2. Signed one by one, each checked unchanged and reviewed again for its plan.
    hashes = bytearray(32 * n)  # of the signed copies: compact, while the signing needs the heap
    counts = []
    ae_digests = []  # a first anti-exfil round's: two per PSBT (handlers._commit)
    for k in range(n):
        app.batch_at = [k, n]
        batch.check(k, busy("checking"))
        with open(batch.path(k), "rb") as f:
            plan = handlers._on_flash(reviewed, k, f, None)
        gc.collect()
        if rounds == "commit":  # anti-exfil's first round: the openings, nothing signed (handlers._commit)
            count, digests = handlers.commit_round(app, batch.path(k), batch.signed_path(k), app.ae_spool(k), plan,
                                                   registry)
            counts.append(count)
            ae_digests.extend(digests)
        else:
            counts.append(handlers.sign_file(app, batch.path(k), batch.signed_path(k), plan, registry))
        plan = None
        hashes[32 * k : 32 * k + 32] = file_sha256(batch.signed_path(k))
        batch.signed.append(os.stat(batch.signed_path(k))[6])
        gc.collect()
    app.batch_at = None
    shown = totals.to_dict()
    if rounds == "commit":
        # Nothing of the review is kept for the second round (handlers._commit)
        app.ae_round = {"batch": n, "counts": counts, "digests": ae_digests, "at": app.board.ticks_ms()}
        return {"review": shown, "signed": _answers(batch, hashes, [0] * n, counts)}
    return {"review": shown, "signed": _answers(batch, hashes, counts)}


def _answers(batch, hashes, counts, openings=None):
    out = []
    for k in range(len(counts)):
        one = {"sha256": bytes(hashes[32 * k : 32 * k + 32]), "length": batch.signed[k], "signatures": counts[k]}
        if openings is not None:
            one["openings"] = openings[k]
        out.append(one)
    return out


def _reveal_batch(app):
    """Anti-exfil's second round for a batch (handlers._reveal for each of
    its PSBTs): each must be the one of the first round but for anti-exfil
    fields; each is reviewed again for its plan and the batch's totals (no
    screen), then signed with the host's entropy. One try."""
    from . import anti_exfil, handlers, review
    from .wallet_methods import limits

    pending = app.ae_round
    batch = app.batch
    n = len(batch.digests)
    if pending is None or pending.get("batch") != n:
        raise Refused("no first anti-exfil round of this batch to finish (it ended, timed out or another request "
                      "came between): sign the batch again")
    app.ae_round = None
    try:
        app.signed_length = None
        app.read_buf = None
        ks, registry, lim = app.keystore, app.registry(), limits(app)

        def busy(what):
            return lambda *a: app.pump(what, *a)

        hashes = bytearray(32 * n)
        counts = []
        totals = Totals(n)
        for k in range(n):
            app.batch_at = [k, n]
            batch.check(k, busy("checking"))
            if handlers.stripped_hash(batch.path(k)) not in pending["digests"][2 * k : 2 * k + 2]:
                raise Refused("PSBT %d of the batch is not the one approved in the first anti-exfil round" % k)
            with open(batch.path(k), "rb") as f:
                try:
                    rv = review.Reviewer(f, ks, registry, lim, busy("reviewing"))
                    summary, plan = handlers._on_flash(rv.run)
                    handlers._on_flash(totals.add, k, summary, rv.outputs())
                    rv = summary = None
                except DeviceError as e:
                    raise e.__class__("PSBT %d of the batch: %s" % (k, e.message))
            gc.collect()
            with open(app.ae_spool(k), "rb") as spool:
                counts.append(handlers.sign_file(app, batch.path(k), batch.signed_path(k), plan, registry,
                                                 rounds=anti_exfil.Reveal(spool, pending["counts"][k])))
            plan = None
            hashes[32 * k : 32 * k + 32] = file_sha256(batch.signed_path(k))
            batch.signed.append(os.stat(batch.signed_path(k))[6])
            gc.collect()
    finally:
        app.batch_at = None
        app.drop_ae_round()
    shown = totals.to_dict()
    shown["anti_exfil"] = True
    return {"review": shown, "signed": _answers(batch, hashes, counts)}


METHODS = {
    "batch_add": (batch_add, ("index", "sha256")),
    "sign_batch": (sign_batch, ("sha256s", "anti_exfil")),
}
