"""Transaction review: what a PSBT spends, what comes back, what it costs.

review_psbt(stream, keystore, registry=None, limits=None) reads a PSBT (v0 or
v2/BIP370) from a seekable file through psbt_view, one input or output scope
at a time (a previous transaction is hashed as it streams past, never held
whole), and returns two objects: a Summary for the officer and the host
(plain data, integers only) and a Plan for the signer (which inputs to sign
and how; the signer re-checks each in its own pass). Or it raises BadPsbt
(does not parse, breaks BIP174/370) or Refused (a rule below) naming the
input, output or key at fault.

BadPsbt also covers what embit lets through and other parsers would read
differently: duplicate keys in any scope, v2 fields in a v0 PSBT (or a global
transaction in a v2 one), an unsigned transaction with scriptSigs or witness,
a previous transaction that does not fill its field, data after the end.

An input is ours when a BIP32 (or taproot) derivation with our fingerprint
gives the key it claims and the input's script rebuilds from that key:
- single-sig: p2wpkh, p2sh-p2wpkh, p2pkh or p2tr (BIP86 key path, no tree);
- a registered wallet (wallets.py, `registry`): the path is one of our
  cosigners' origins plus chain/index, and the wallet derived there gives the
  input's script (and its witness/redeem script, taproot leaf, internal key
  and merkle root, when the PSBT has them). Those are signed on the multisig
  script (wsh, sh-wsh, sh) or the multi_a leaf (tr script path).
All signed inputs come from one wallet; our single-key accounts count as one.

Refused:
- no input is ours; inputs of ours from more than one wallet;
- a derivation with our fingerprint (input or output) whose key is not ours at
  that path, or whose script does not rebuild from it or from the registered
  wallet its path points into (a cosigner's key swapped in a change output);
- our key in a wallet input at a path other than chain 0/1, index up to
  1,000,000 below our xpub;
- a derivation whose path has the coin type of another network (44/48/49/84/
  86/87 purposes), a global xpub of another network (an output to our own
  single-sig key at such a path is shown as a spend with a warning instead);
- an input of unknown amount (no witness_utxo nor non_witness_utxo), a
  non_witness_utxo whose txid is not the prevout's, or one that disagrees with
  the witness_utxo;
- a segwit v0 or legacy input of ours without non_witness_utxo (the segwit v0
  fee attack: only the full previous transaction proves the amount); and a
  foreign one without it, unless a taproot input we sign commits to every
  amount (else two PSBTs of one transaction, each passing one of our inputs
  off as foreign with a tiny amount, show small fees that add up to a large
  one);
- the same prevout spent twice; outputs worth more than inputs; no outputs;
- an input of ours with a sighash type other than ALL (or DEFAULT on taproot);
- a fee above the limits: fee_percent_tenths / 10 % of the amount sent (of the
  inputs when nothing leaves), or fee_max_sat.

Change: back to the wallet every signed input comes from, at a standard path.
Single-sig: the standard path for its script type (44/49/84/86, coin 0' on
main and 1' elsewhere, hardened account, chain 0 or 1, index <= 1,000,000). A
wallet: its script rebuilds from the wallet at chain 0 or 1, index <=
1,000,000. Anything else is shown as a spend.

Warnings, shown with the review (the officer decides):
- "input N is not signed by this device" (one line, listing every such input);
- an output of ours at an unusual path, or of another of our wallets (shown as
  a spend); an output naming a wallet's cosigners whose script is not the
  wallet's;
- fee above 0.01 BTC, or above 5% of the amount sent (of the inputs when
  nothing leaves the wallet); fee rate below 1 sat/vB;
- locktime set (block height or unix time);
- an output with no address (shown as hex), an OP_RETURN output with value;
- a wallet record in flash that does not verify (never used).

For v2, nLockTime follows BIP370 (psbt_view.Locktime); the plan carries it
to the signer, whose view knows only the fallback.

vsize is an estimate of the signed transaction: single-sig inputs at their
exact size with a 71-byte (low-R) ECDSA signature; wallet inputs with the
wallet's threshold of signatures over its own scripts; foreign p2wsh and bare
p2sh inputs as 2-of-3 multisig; unknown scripts as p2wpkh.
"""

from binascii import hexlify

from embit import compact

from .capacity import check_counts
from .errors import Refused
from .keyexpr import format_path
from .ownership import (
    SINGLE,
    KeyCache,
    OutputMatch,
    Wallets,
    check_coins,
    check_global_xpubs,
    classify_input,
    match_output,
    our_cosigners,
    output_owner,
    owner_of,
    owner_text,
)
from . import proof
from .psbt_view import (LOCKTIME_THRESHOLD, MAX_MONEY, PARSE_ERRORS, Locktime, TxHashes, check_utxo,
                        has_previous_tx, open_view)
from .scripts import coin_type
from .storage import DEFAULT_LIMITS

FEE_ABSURD_SAT = 1000000
SIGHASH_DEFAULT = 0
SIGHASH_ALL = 1
PAGE = 10  # outputs on one review screen; more are paged through, re-read from flash
LISTED = 8  # input numbers listed in a warning before "and N more"

# Weight units of one signed input (outpoint, sequence, scriptSig, witness).
INPUT_WEIGHT = {
    "p2pkh": 588,  # (36 + 4 + 1 + 72 + 34) * 4
    "p2sh-p2wpkh": 363,  # (36 + 4 + 1 + 23) * 4 + 1 + 72 + 34
    "p2wpkh": 271,  # 41 * 4 + 1 + 72 + 34
    "p2tr": 230,  # 41 * 4 + 1 + 65
    "p2wsh": 418,  # 2-of-3: 41 * 4 + 1 + 1 + 2 * 73 + 106
    "p2sh": 1188,  # 2-of-3: (36 + 4 + 3 + 254) * 4
}
SEGWIT_TYPES = ("p2sh-p2wpkh", "p2wpkh", "p2tr", "p2wsh")


def address_of(spk, network):
    try:
        return spk.address(network)
    except PARSE_ERRORS:
        pass
    data = spk.data
    if data[:1] == b"\x6a":
        return "OP_RETURN " + hexlify(data[1:]).decode()
    return "script " + hexlify(data).decode()


def _input_weight(kind, inp, spk):
    if kind is None:
        kind = spk.script_type()
        if kind == "p2sh" and inp.redeem_script is not None and inp.redeem_script.script_type() == "p2wpkh":
            kind = "p2sh-p2wpkh"
    w = INPUT_WEIGHT.get(kind, INPUT_WEIGHT["p2wpkh"])
    if kind == "p2tr" and inp.sighash_type:
        w += 1  # explicit sighash byte
    return w, kind in SEGWIT_TYPES or kind not in INPUT_WEIGHT


class Summary:
    """What the officer is shown and the host is told: plain data, integers
    only (the fee rate in tenths of sat/vB), the same size whatever the
    transaction's: totals, the first PAGE outputs (all of them when there are
    no more; else `truncated`, and the officer pages through them all), and
    at most PAGE warnings about outputs (each output's own is shown with it)."""

    def __init__(self):
        self.version = 0
        self.inputs = 0
        self.outputs = 0
        self.locktime = 0
        self.wallet = None  # registered wallet the signed inputs belong to (None: single-sig)
        self.account = None  # the single-sig account they belong to
        self.signing = 0  # inputs signed
        self.taproot = 0  # of them, those signed by BIP340 (no anti-exfil for these yet)
        self.spends = []
        self.change = []
        self.spends_count = 0
        self.change_count = 0
        self.sent_sat = 0
        self.change_sat = 0
        self.fee_sat = 0
        self.vsize = 0
        self.fee_rate_tenths = 0
        self.warnings = []
        self.txid = None
        self.proof = None  # a BIP-322 proof of reserves: its message and coins (proof.Proof.to_dict())

    def to_dict(self):
        out = {
            "version": self.version,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "locktime": self.locktime,
            "wallet": self.wallet,
            "account": self.account,
            "signing": self.signing,
            "taproot": self.taproot,
            "spends": self.spends,
            "change": self.change,
            "spends_count": self.spends_count,
            "change_count": self.change_count,
            "sent_sat": self.sent_sat,
            "change_sat": self.change_sat,
            "fee_sat": self.fee_sat,
            "vsize": self.vsize,
            "fee_rate_tenths": self.fee_rate_tenths,
            "warnings": self.warnings,
            "txid": self.txid,
        }
        if self.proof is not None:
            out["proof"] = self.proof
        if self.outputs > PAGE:
            out["truncated"] = True
        return out


class Plan:
    """What the signer needs, the same size whatever the transaction's: how
    many inputs it signs and whose they are (`owner`: a registered wallet's
    name, or (SINGLE, account) for a single-sig account; `wallet` and our
    `cosigners` in it), the locktime and the transaction's hashes
    (psbt_view.TxHashes). The signer finds the inputs again by the same
    rules, and refuses a PSBT in which it does not find these."""

    def __init__(self, num_inputs, num_outputs):
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self.signing = 0
        self.owner = None
        self.wallet = None
        self.cosigners = []
        self.locktime = 0
        self.digests = None


def _nothing(*a):
    pass


def review_psbt(stream, keystore, registry=None, limits=None, progress=None):
    """(Summary, Plan) of the PSBT in `stream`: Reviewer(...).run()."""
    return Reviewer(stream, keystore, registry, limits, progress).run()


class Reviewer:
    """The review of the PSBT in `stream` (seekable, binary) for `keystore`,
    with the registered wallets of `registry` (None: none) and the fee
    `limits` (DEFAULT_LIMITS if None), the coins spent so far in `seen`
    (a batch's Prevouts; None: a fresh one). `progress(done, total)` is called
    after every input and output, so that the device keeps answering pings
    on a long PSBT. run() reads it once for the Summary and the Plan;
    outputs() reads the outputs again for the pages the officer sees."""

    def __init__(self, stream, keystore, registry=None, limits=None, progress=None, seen=None):
        self.progress = progress or _nothing
        self.seen = seen  # a Prevouts shared with the other PSBTs of a batch
        self.view = view = open_view(stream)
        check_counts(view.num_inputs, view.num_outputs)
        self.net = keystore.network
        self.coin = coin_type(self.net)
        self.fp = keystore.fingerprint
        self.keys = KeyCache(keystore.root)
        self.limits = limits or DEFAULT_LIMITS
        self.summary = Summary()
        self.wallets = Wallets(registry, self.summary.warnings) if registry is not None else None
        self.owner = None
        self.first_output = None  # offset of the first output scope

    def run(self):
        view = self.view
        r = self.summary
        r.version = view.version or 0
        r.inputs = view.num_inputs
        r.outputs = view.num_outputs
        plan = Plan(r.inputs, r.outputs)
        if r.outputs == 0:
            raise Refused("the transaction has no outputs")
        check_global_xpubs(view, self.net)
        message = proof.message_of(view)
        claim = None if message is None else proof.Proof(message, r.inputs, r.outputs)
        steps = r.inputs + r.outputs
        hashes = TxHashes(view.tx_version, r.inputs, r.outputs)
        locks = Locktime()
        seen = self.seen or Prevouts()
        foreign = Listed()
        unproven = None  # the first foreign non-taproot input without its previous transaction
        signs_taproot = False
        first = None  # the first input we sign
        total_in = 0
        weight = 0
        segwit = 0
        any_final_seq = True
        pos = view.first_scope
        for i in range(r.inputs):
            self.progress(i, steps)
            vin, inp, pos = view.read_input(i, pos)
            seen.check(view, i, vin)
            utxo = check_utxo(i, inp, vin)
            spk = utxo.script_pubkey
            total_in += utxo.value
            hashes.add_input(vin, utxo)
            if vin.sequence != 0xFFFFFFFF:
                any_final_seq = False
            if r.version == 2:
                locks.add(i, inp)
            check_coins("input %d" % i, inp, self.coin)
            mine = classify_input(i, inp, spk, self.keys, self.fp, self.wallets)
            if claim is not None:
                claim.input(i, vin, utxo, mine is not None)
            if mine is None:
                foreign.add(i)
                if unproven is None and spk.script_type() != "p2tr" and not has_previous_tx(inp):
                    unproven = i
                w, sw = _input_weight(None, inp, spk)
            else:
                owner = owner_of(mine)
                if self.owner is None:
                    self.owner, first = owner, i
                elif owner != self.owner:
                    raise Refused("inputs %d and %d belong to different wallets (%s, %s)"
                                  % (first, i, owner_text(self.owner), owner_text(owner)))
                kind = mine[1][0] if mine[0] == "single" else self.wallets.get(owner).kind
                _check_signable(i, inp, kind, claim is not None)
                signs_taproot = signs_taproot or kind in ("p2tr", "tr")
                r.taproot += kind in ("p2tr", "tr")
                plan.signing += 1
                if mine[0] == "single":
                    w, sw = _input_weight(kind, inp, spk)
                else:
                    w, sw = mine[1].weight, mine[1].segwit
            weight += w
            segwit += sw
        if total_in > MAX_MONEY:
            raise Refused("the inputs add up to %d sat, more than 21 million BTC" % total_in)
        if not plan.signing:
            raise Refused("no input of this PSBT belongs to this device")
        if unproven is not None and not signs_taproot and claim is None:
            # Its amount comes from a bare witness_utxo: in another PSBT of the
            # same transaction one of our inputs could be the unproven one, and
            # two approvals of small fees make one transaction with a large fee.
            # (A taproot signature commits to every amount, so then a lie here
            # only invalidates our own signature.)
            raise Refused("input %d: not this device's, and without its previous transaction (non_witness_utxo) "
                          "its amount, so the fee, cannot be verified" % unproven)
        plan.owner = self.owner
        r.signing = plan.signing
        if isinstance(self.owner, str):
            r.wallet = self.owner
            plan.wallet = self.wallets.get(r.wallet)
            plan.cosigners = our_cosigners(plan.wallet)
        else:
            r.account = self.owner[1]
        r.locktime = plan.locktime = locks.result(view.locktime) if r.version == 2 else view.locktime

        self.first_output = pos
        total_out = 0
        listed_warnings = 0
        for j in range(r.outputs):
            self.progress(r.inputs + j, steps)
            out, pos = view.read_output(j, pos)
            hashes.add_output(out)
            if claim is not None:
                claim.output(out)
                continue
            spk = out.script_pubkey
            total_out += out.value
            if total_out > MAX_MONEY:
                raise Refused("outputs 0 to %d add up to more than 21 million BTC" % j)
            weight += 4 * (8 + len(compact.to_bytes(len(spk.data))) + len(spk.data))
            entry, change, warning = self._output(j, out)
            if change:
                r.change_count += 1
                r.change_sat += out.value
                listed = r.change
            else:
                r.spends_count += 1
                r.sent_sat += out.value
                listed = r.spends
            if len(r.spends) + len(r.change) < PAGE:
                listed.append(entry)
            if warning is not None:
                listed_warnings += 1
                if listed_warnings <= PAGE:
                    r.warnings.append(warning)
        view.check_end(pos)
        self.keys.clear()
        plan.digests = hashes.digests()
        r.txid = hashes.txid(r.locktime)
        if listed_warnings > PAGE:
            r.warnings.append("%d more outputs have warnings, each shown with its output" % (listed_warnings - PAGE))

        if claim is not None:
            # nothing is paid and no fee: the coins are shown, never spent
            r.proof = claim.to_dict()
            return r, plan
        if total_out > total_in:
            raise Refused("outputs (%d sat) exceed inputs (%d sat)" % (total_out, total_in))
        r.fee_sat = total_in - total_out
        _check_limits(r.fee_sat, r.sent_sat, total_in, self.limits)
        weight += 4 * (8 + len(compact.to_bytes(r.inputs)) + len(compact.to_bytes(r.outputs)))
        if segwit:
            # marker and flag, and an empty witness for each non-segwit input
            weight += 2 + (r.inputs - segwit)
        r.vsize = (weight + 3) // 4
        r.fee_rate_tenths = (r.fee_sat * 20 + r.vsize) // (2 * r.vsize)  # rounded
        _warn(r, foreign, total_in, any_final_seq)
        return r, plan

    def _output(self, j, out):
        """(entry, is change, warning or None) of output j, for the totals and
        for the pages alike."""
        entry = {"address": address_of(out.script_pubkey, self.net), "amount_sat": out.value}
        mine = match_output(j, out, self.keys, self.fp, self.coin, self.wallets)
        if isinstance(mine, OutputMatch) and mine.std and output_owner(mine) == self.owner:
            # change only back to the wallet (or account) every signed input comes from
            entry["path"] = format_path(mine.path)
            if mine.wallet != SINGLE:
                entry["wallet"] = mine.wallet
            return entry, True, None
        return entry, False, _spend_warning(j, out, mine, self.owner)

    def outputs(self):
        """Every output again, re-read from flash after run(): dicts with "n",
        "change" (bool), "address", "amount_sat", "path" and "wallet" (change),
        "warning" (if any)."""
        view = self.view
        pos = self.first_output
        n = self.summary.outputs
        for j in range(n):
            self.progress(j, n)
            out, pos = view.read_output(j, pos)
            entry, change, warning = self._output(j, out)
            entry["n"] = j
            entry["change"] = change
            if warning is not None:
                entry["warning"] = warning
            yield entry
        self.keys.clear()


class Prevouts:
    """Which prevouts the inputs so far spend, in a fixed 4 KiB (a Bloom
    filter): a possible repeat is checked against the earlier inputs
    themselves, so the answer is exact and the memory does not grow.

    A batch shares one across its PSBTs (`candidates` a list): a possible
    repeat not found in the same PSBT is kept there, at most CANDIDATES,
    for the batch to check against the other PSBTs (batch.py)."""

    BITS = 4096 * 8
    # In pieces of 1 KiB: after a PSBT is signed the heap may have no free
    # 4 KiB in one block (seen on the QEMU target in a batch's second
    # anti-exfil round), but it has smaller ones.
    PIECE_BITS = 1024 * 8
    CANDIDATES = 64

    def __init__(self, candidates=None):
        self.bits = [bytearray(self.PIECE_BITS // 8) for _ in range(self.BITS // self.PIECE_BITS)]
        self.candidates = candidates

    def check(self, view, i, vin):
        t, v = vin.txid, vin.vout
        hit = True
        for k in (0, 4, 8):  # txids are hashes: their bytes are already spread
            b = (int.from_bytes(t[k : k + 4], "little") ^ (v * 0x9E3779B1)) % self.BITS
            piece, b = self.bits[b // self.PIECE_BITS], b % self.PIECE_BITS
            if not piece[b >> 3] & (1 << (b & 7)):
                hit = False
                piece[b >> 3] |= 1 << (b & 7)
        if not hit:
            return
        for j in range(i):
            other = view.prevout(j)
            if other.txid == t and other.vout == v:
                raise Refused("input %d spends the same coin as input %d" % (i, j))
        if self.candidates is not None and (t, v) not in self.candidates:
            if len(self.candidates) >= self.CANDIDATES:
                raise Refused("the batch has too many inputs to check that no coin is spent twice; "
                              "sign it in smaller batches")
            self.candidates.append((bytes(t), v))


class Listed:
    """Input numbers for a warning: how many, and the first LISTED."""

    def __init__(self):
        self.count = 0
        self.first = []

    def add(self, i):
        self.count += 1
        if len(self.first) < LISTED:
            self.first.append(i)

    def text(self):
        shown = ", ".join(["%d" % i for i in self.first])
        if self.count > len(self.first):
            shown += " and %d more" % (self.count - len(self.first))
        return shown


def _check_signable(i, inp, kind, proof=False):
    taproot = kind in ("p2tr", "tr")
    sh = inp.sighash_type
    allowed = (None, SIGHASH_ALL, SIGHASH_DEFAULT) if taproot else (None, SIGHASH_ALL)
    if sh not in allowed:
        raise Refused("input %d: sighash type 0x%02x is not allowed (only ALL)" % (i, sh))
    # (a proof pays nothing, so no fee: a wrong amount only makes it fail
    # against the chain's)
    if not taproot and not proof and not has_previous_tx(inp):
        raise Refused(
            "input %d: previous transaction (non_witness_utxo) missing; "
            "required for segwit v0 and legacy inputs" % i
        )


def _spend_warning(j, out, mine, owner):
    """Why an output shown as a spend deserves a second look, or None."""
    spk = out.script_pubkey
    if isinstance(mine, str):
        return mine
    if mine is None:
        if spk.data[:1] == b"\x6a":
            if out.value:
                return "output %d is an OP_RETURN output: its %d sat are burnt" % (j, out.value)
        elif spk.script_type() is None:
            return "output %d pays to a script with no address" % j
        return None
    if not mine.std:
        text = "output %d pays to this device at an unusual path %s" % (j, format_path(mine.path))
        if mine.wallet != SINGLE:
            text += " of wallet %s" % mine.wallet
        return text
    if mine.wallet == SINGLE:
        if isinstance(owner, str):
            return "output %d pays to this device's single-sig key at %s, not to wallet %s" % (
                j, format_path(mine.path), owner)
        return "output %d pays to this device's %s, not to %s the inputs come from" % (
            j, output_owner(mine)[1], owner[1])
    return "output %d pays to wallet %s, not the wallet the inputs come from" % (j, mine.wallet)


def _pct(tenths):
    return "%d" % (tenths // 10) if tenths % 10 == 0 else "%d.%d" % (tenths // 10, tenths % 10)


def _check_limits(fee, sent, total_in, limits):
    tenths = limits.get("fee_percent_tenths", DEFAULT_LIMITS["fee_percent_tenths"])
    most = limits.get("fee_max_sat", DEFAULT_LIMITS["fee_max_sat"])
    base = sent or total_in  # a self-transfer: the fee against what it moves
    if fee * 1000 > base * tenths:
        raise Refused("fee %d sat is above the device's limit of %s%% of the amount %s"
                      % (fee, _pct(tenths), "sent" if sent else "moved"))
    if fee > most:
        raise Refused("fee %d sat is above the device's limit of %d sat" % (fee, most))


def _warn(r, foreign, total_in, any_final_seq):
    w = r.warnings
    if foreign.count == 1:
        w.insert(0, "input %s is not signed by this device" % foreign.text())
    elif foreign.count:
        w.insert(0, "inputs %s are not signed by this device" % foreign.text())
    sent = r.sent_sat
    if r.fee_sat > FEE_ABSURD_SAT:
        w.append("fee of %d sat is above 0.01 BTC" % r.fee_sat)
    base = sent or total_in
    if base and r.fee_sat * 20 > base:
        pct = (r.fee_sat * 1000 + base // 2) // base
        what = "sent" if sent else "moved"
        w.append("fee is %d.%d%% of the amount %s" % (pct // 10, pct % 10, what))
    if r.fee_rate_tenths < 10:
        w.append("fee rate below 1 sat/vB: the network may not relay it")
    if r.locktime:
        if r.locktime < LOCKTIME_THRESHOLD:
            text = "locktime set: not valid before block %d" % r.locktime
        else:
            text = "locktime set: not valid before unix time %d" % r.locktime
        if any_final_seq:
            text += " (no effect: every input sequence is final)"
        w.append(text)
