"""Transaction review: what a PSBT spends, what comes back, what it costs.

review_psbt(stream, keystore) reads a PSBT (v0 or v2/BIP370) from a seekable
file with embit's PSBTView, one input or output scope at a time (a previous
transaction is hashed as it streams past, never held whole), and returns a
Review for the screens, or raises BadPsbt (does not parse, breaks BIP174/370)
or Refused (a rule below) naming the input or output at fault.

BadPsbt also covers what embit lets through and other parsers would read
differently: duplicate keys in any scope, v2 fields in a v0 PSBT (or a global
transaction in a v2 one), an unsigned transaction with scriptSigs or witness,
a previous transaction that does not fill its field, data after the end.

Single-signature wallets only: an input is ours when a BIP32 derivation with our
fingerprint gives the key it claims and the input's script rebuilds from that
key as p2wpkh, p2sh-p2wpkh, p2pkh or p2tr (BIP86 key path, no script tree).

Refused:
- no input is ours;
- a derivation with our fingerprint (input or output) whose key is not ours at
  that path, or whose script does not rebuild from it;
- an input of unknown amount (no witness_utxo nor non_witness_utxo), a
  non_witness_utxo whose txid is not the prevout's, or one that disagrees with
  the witness_utxo;
- a segwit v0 or legacy input of ours without non_witness_utxo (the segwit v0
  fee attack: only the full previous transaction proves the amount);
- the same prevout spent twice; outputs worth more than inputs; no outputs;
- an input of ours with a sighash type other than ALL (or DEFAULT on taproot).

Change: an output of ours whose path is the standard one for its script type
(44/49/84/86, coin 0' on main and 1' elsewhere, hardened account, chain 0 or
1, index <= 1,000,000). One of ours at any other path is shown as a spend.

Warnings, shown with the review (the officer decides):
- "input N is not signed by this device" (one line, listing every such input);
- an output of ours at an unusual path (shown as a spend);
- fee above 0.01 BTC, or above 5% of the amount sent (of the inputs when
  nothing leaves the wallet); fee rate below 1 sat/vB;
- locktime set (block height or unix time);
- an output with no address (shown as hex), an OP_RETURN output with value.

For v2, nLockTime follows BIP370 (the inputs' required locktimes win over the
fallback); embit's view knows only the fallback, so the signer is handed ours.

vsize is an estimate of the signed transaction: single-sig inputs at their
exact size with a 71-byte (low-R) ECDSA signature; foreign p2wsh and bare p2sh
inputs as 2-of-3 multisig; unknown scripts as p2wpkh.
"""

import hashlib
from binascii import hexlify

from embit import compact, script
from embit.base import EmbitError
from embit.networks import NETWORKS
from embit.psbt import CompressMode, InputScope, OutputScope, read_string, skip_string
from embit.psbtview import PSBTView
from embit.transaction import TransactionInput

from .errors import BadPsbt, DeviceError, Refused
from .scripts import format_path, is_standard_path

HARDENED = 0x80000000
MAX_MONEY = 2100000000000000
MAX_PATH_DEPTH = 16
FEE_ABSURD_SAT = 1000000
LOCKTIME_THRESHOLD = 500000000
SIGHASH_DEFAULT = 0
SIGHASH_ALL = 1

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

# embit raises these (and its own errors) on malformed data; MemoryError and
# OSError are not about the PSBT and go up as they are.
PARSE_ERRORS = (EmbitError, ValueError, TypeError, IndexError, KeyError, RuntimeError, AssertionError)


def _why(e):
    return str(e) or type(e).__name__


class StrictView(PSBTView):
    """PSBTView that finds v2 fields by their exact key.

    embit matches key prefixes: an output scope holding an unknown key
    0x03<data> before PSBT_OUT_AMOUNT would make the sighash commit to another
    amount than the one reviewed.
    """

    def seek_to_value(self, key, from_current=False):
        off = 0
        if not from_current:
            self.stream.seek(self.offset + len(self.MAGIC))
            off = self.offset + len(self.MAGIC)
        while True:
            k = read_string(self.stream)
            off += len(k) + len(compact.to_bytes(len(k)))
            if not k:
                return None
            if k == key:
                return off
            off += skip_string(self.stream)


class _Input(InputScope):
    """embit does not check that a non_witness_utxo fills its field: the rest of
    the value would be parsed as more keys, which no other parser sees."""

    def read_value(self, stream, k):
        if k != b"\x00":
            return InputScope.read_value(self, stream, k)
        start = stream.tell()
        n = compact.read_from(stream)
        end = stream.tell() + n
        stream.seek(start)
        InputScope.read_value(self, stream, k)
        if stream.tell() != end:
            raise BadPsbt("non_witness_utxo does not fill its field")


def open_view(stream):
    """PSBTView of the PSBT at the start of `stream`, global scope checked."""
    stream.seek(0)
    try:
        view = StrictView.view(stream)
        _check_globals(view)
    except DeviceError:
        raise
    except PARSE_ERRORS as e:
        raise BadPsbt("not a valid PSBT: %s" % _why(e))
    return view


def _check_globals(view):
    s = view.stream
    s.seek(view.offset + len(view.MAGIC))
    seen = set()
    tx_len = None
    while True:
        key = read_string(s)
        if not key:
            break
        if key in seen:
            raise BadPsbt("duplicate global key %s" % hexlify(key).decode())
        seen.add(key)
        if key == b"\x00":
            tx_len = compact.read_from(s)
            tx_start = s.tell()
            s.seek(tx_len, 1)
        else:
            skip_string(s)
    version = view.version or 0
    if version not in (0, 2):
        raise BadPsbt("unsupported PSBT version %d" % version)
    if version == 0:
        for key in (b"\x02", b"\x03", b"\x04", b"\x05", b"\x06"):
            if key in seen:
                raise BadPsbt("PSBT v0 with a v2 global field %s" % hexlify(key).decode())
        _check_unsigned_tx(view, tx_start, tx_len)
    else:
        if tx_len is not None:
            raise BadPsbt("PSBT v2 with an unsigned transaction")
        if b"\x02" not in seen:
            raise BadPsbt("PSBT v2 without transaction version")
        if view.tx_version < 2:
            raise BadPsbt("PSBT v2 with transaction version %d" % view.tx_version)
    if view.num_inputs == 0:
        raise BadPsbt("the transaction has no inputs")


def _check_unsigned_tx(view, start, length):
    # PSBTView reads inputs at fixed offsets: the unsigned transaction must
    # have empty scriptSigs and no witness, as BIP174 asks.
    tx = view.tx
    s = view.stream
    if tx.num_vin == 0:
        raise BadPsbt("unsigned transaction has no inputs or has witness data")
    for i in range(tx.num_vin):
        s.seek(tx.vin0_offset + tx.LEN_VIN * i + 36)
        if s.read(1) != b"\x00":
            raise BadPsbt("unsigned transaction: input %d has a scriptSig" % i)
    s.seek(tx.vout0_offset)
    for _ in range(tx.num_vout):
        s.seek(8, 1)
        s.seek(compact.read_from(s), 1)
    if s.tell() + 4 != start + length:
        raise BadPsbt("unsigned transaction does not fill its field")


def _scan_scope(s, want, where):
    """Check a scope for duplicate keys; return the values of keys in `want`."""
    keys = set()
    found = {}
    while True:
        key = read_string(s)
        if not key:
            return found
        if key in keys:
            raise BadPsbt("%s: duplicate key %s" % (where, hexlify(key).decode()))
        keys.add(key)
        if key in want:
            found[key] = read_string(s)
        else:
            skip_string(s)


V2_INPUT_KEYS = (b"\x0e", b"\x0f", b"\x10")


def read_input(view, i, pos):
    """(vin, scope, offset of the next scope) of input i, whose scope is at pos."""
    where = "input %d" % i
    s = view.stream
    try:
        s.seek(pos)
        found = _scan_scope(s, V2_INPUT_KEYS, where)
        end = s.tell()
        if view.tx is not None:
            vin = view.tx.vin(i)
        else:
            txid = found.get(b"\x0e")
            vout = found.get(b"\x0f")
            seq = found.get(b"\x10", b"\xff\xff\xff\xff")
            if txid is None or len(txid) != 32 or vout is None or len(vout) != 4 or len(seq) != 4:
                raise BadPsbt("%s: previous txid or output index missing or malformed" % where)
            vin = TransactionInput(
                bytes(reversed(txid)), int.from_bytes(vout, "little"), sequence=int.from_bytes(seq, "little")
            )
        s.seek(pos)
        # compressed: the previous transaction is hashed as it is read, only
        # the spent output is kept
        inp = _Input.read_from(s, vin=vin, compress=CompressMode.PARTIAL)
    except DeviceError as e:
        if e.message.startswith(where):
            raise
        raise type(e)("%s: %s" % (where, e.message))
    except PARSE_ERRORS as e:
        raise BadPsbt("%s: %s" % (where, _why(e)))
    if s.tell() != end:
        raise BadPsbt("%s: scope does not parse" % where)
    if inp.txid != vin.txid or inp.vout != vin.vout or inp.sequence != vin.sequence:
        raise BadPsbt("%s: fields disagree with the unsigned transaction" % where)
    return vin, inp, end


def read_output(view, j, pos):
    """(scope, offset of the next scope) of output j, whose scope is at pos."""
    where = "output %d" % j
    s = view.stream
    try:
        s.seek(pos)
        _scan_scope(s, (), where)
        end = s.tell()
        vout = view.tx.vout(j) if view.tx is not None else None
        s.seek(pos)
        out = OutputScope.read_from(s, vout=vout)
    except DeviceError:
        raise
    except PARSE_ERRORS as e:
        raise BadPsbt("%s: %s" % (where, _why(e)))
    if s.tell() != end:
        raise BadPsbt("%s: scope does not parse" % where)
    if out.value is None or out.script_pubkey is None:
        raise BadPsbt("%s: amount or script missing" % where)
    if vout is not None and (out.value != vout.value or out.script_pubkey != vout.script_pubkey):
        raise BadPsbt("%s: fields disagree with the unsigned transaction" % where)
    return out, end


def check_utxo(i, inp, vin):
    """The output input i spends, proven by its previous transaction if given."""
    # PARTIAL mode keeps the spent output in _utxo and the hash in _txhash.
    full = inp._utxo
    if inp._txhash is not None and bytes(reversed(inp._txhash)) != vin.txid:
        raise Refused("input %d: previous transaction does not match its txid" % i)
    if full is not None and inp.witness_utxo is not None:
        if full.serialize() != inp.witness_utxo.serialize():
            raise Refused("input %d: witness_utxo and non_witness_utxo disagree" % i)
    utxo = full or inp.witness_utxo
    if utxo is None:
        raise Refused("input %d: amount unknown (no witness_utxo or non_witness_utxo)" % i)
    if utxo.value < 0 or utxo.value > MAX_MONEY:
        raise Refused("input %d: amount out of range" % i)
    return utxo


class KeyCache:
    """Keys of the keystore at BIP32 paths. The hardened prefix of a path (the
    account) is derived once and kept; only the last steps are derived per key."""

    def __init__(self, root, private=False):
        self.root = root
        self.private = private
        self.nodes = {}

    def get(self, path):
        n = len(path)
        while n and path[n - 1] < HARDENED:
            n -= 1
        prefix = tuple(path[:n])
        node = self.nodes.get(prefix)
        if node is None:
            if len(self.nodes) >= 8:
                self.nodes.clear()
            node = self.root.derive(list(prefix))
            if not self.private:
                node = node.to_public()
            self.nodes[prefix] = node
        return node.derive(path[n:]) if n < len(path) else node

    def clear(self):
        self.nodes.clear()


def rebuild(spk, pub):
    """The single-sig type of `spk` if it is `pub`'s script, else None."""
    t = spk.script_type()
    if t == "p2wpkh" and spk == script.p2wpkh(pub):
        return "p2wpkh"
    if t == "p2tr" and spk == script.p2tr(pub):
        return "p2tr"
    if t == "p2sh" and spk == script.p2sh(script.p2wpkh(pub)):
        return "p2sh-p2wpkh"
    if t == "p2pkh" and spk == script.p2pkh(pub):
        return "p2pkh"
    return None


def _claims(scope, fingerprint):
    """(pubkey, path, taproot leaf hashes or None) of derivations with our fingerprint."""
    out = []
    for pub in scope.bip32_derivations:
        der = scope.bip32_derivations[pub]
        if der.fingerprint == fingerprint:
            out.append((pub, der.derivation, None))
    for pub in scope.taproot_bip32_derivations:
        leaves, der = scope.taproot_bip32_derivations[pub]
        if der.fingerprint == fingerprint:
            out.append((pub, der.derivation, leaves))
    return out


def _check_claim(where, keys, spk, pub, path, leaves):
    """(type, derived HDKey) of a claim with our fingerprint, or Refused."""
    at = format_path(path)
    if len(path) > MAX_PATH_DEPTH:
        raise Refused("%s: derivation path %s is too long" % (where, at))
    hd = keys.get(path)
    if leaves is None:
        same = hd.sec() == pub.sec()
    else:
        same = hd.xonly() == pub.xonly()
    if not same:
        raise Refused("%s: key at %s is not this device's key for that path" % (where, at))
    kind = rebuild(spk, hd.get_public_key())
    if kind is None or (leaves and kind == "p2tr"):
        raise Refused("%s: script does not match the key at %s" % (where, at))
    return kind, hd


def match_input(i, inp, spk, keys, fingerprint):
    """(type, derived HDKey, path) if input i is ours, None if it is not."""
    where = "input %d" % i
    found = None
    for pub, path, leaves in _claims(inp, fingerprint):
        kind, hd = _check_claim(where, keys, spk, pub, path, leaves)
        if kind == "p2tr" and inp.taproot_merkle_root is not None:
            raise Refused("%s: taproot script tree present; only BIP86 key-path spends are supported" % where)
        if kind == "p2sh-p2wpkh" and inp.redeem_script is not None:
            if inp.redeem_script != script.p2wpkh(hd.get_public_key()):
                raise Refused("%s: redeem script does not match the key at %s" % (where, format_path(path)))
        if found is None:
            found = (kind, hd, path)
    return found


def match_output(j, out, keys, fingerprint, coin):
    """(is standard change, path) if output j pays to our key, None otherwise."""
    where = "output %d" % j
    best = None
    for pub, path, leaves in _claims(out, fingerprint):
        kind, _ = _check_claim(where, keys, out.script_pubkey, pub, path, leaves)
        std = is_standard_path(path, kind, coin)
        if best is None or (std and not best[0]):
            best = (std, path)
    return best


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


def _input_list(idx):
    return ", ".join(["%d" % i for i in idx])


class Review:
    def __init__(self):
        self.version = 0
        self.num_inputs = 0
        self.num_outputs = 0
        self.locktime = 0
        self.spends = []
        self.change = []
        self.fee_sat = 0
        self.vsize = 0
        self.fee_rate_sat_vb = 0.0
        self.warnings = []
        self.ours = []
        # BIP341 sha_amounts and sha_scriptpubkeys, for the taproot sighash
        self.sha_amounts = None
        self.sha_scriptpubkeys = None

    def to_dict(self):
        return {
            "version": self.version,
            "inputs": self.num_inputs,
            "outputs": self.num_outputs,
            "locktime": self.locktime,
            "spends": self.spends,
            "change": self.change,
            "fee_sat": self.fee_sat,
            "vsize": self.vsize,
            "fee_rate_sat_vb": self.fee_rate_sat_vb,
            "warnings": self.warnings,
            "ours": self.ours,
        }


class _Locktime:
    """BIP370 locktime: the per-input requirements win over the fallback."""

    def __init__(self):
        self.any = False
        self.time_ok = True
        self.height_ok = True
        self.time = 0
        self.height = 0

    def add(self, i, inp):
        t = inp.unknown.get(b"\x11")
        h = inp.unknown.get(b"\x12")
        if t is None and h is None:
            return
        self.any = True
        if t is None:
            self.time_ok = False
        else:
            t = self._value(i, t)
            if t < LOCKTIME_THRESHOLD:
                raise BadPsbt("input %d: required time locktime below 500000000" % i)
            self.time = max(self.time, t)
        if h is None:
            self.height_ok = False
        else:
            h = self._value(i, h)
            if h == 0 or h >= LOCKTIME_THRESHOLD:
                raise BadPsbt("input %d: required height locktime out of range" % i)
            self.height = max(self.height, h)

    def _value(self, i, v):
        if len(v) != 4:
            raise BadPsbt("input %d: required locktime is not 4 bytes" % i)
        return int.from_bytes(v, "little")

    def result(self, fallback):
        if not self.any:
            return fallback
        if self.height_ok:
            return self.height
        if self.time_ok:
            return self.time
        raise BadPsbt("inputs require both a height and a time locktime")


def review_psbt(stream, keystore):
    """Review of the PSBT in `stream` (seekable, binary) for `keystore`."""
    view = open_view(stream)
    net = keystore.network
    coin = 0 if net["bech32"] == NETWORKS["main"]["bech32"] else 1
    fp = keystore.fingerprint
    keys = KeyCache(keystore.root)
    r = Review()
    r.version = view.version or 0
    r.num_inputs = view.num_inputs
    r.num_outputs = view.num_outputs
    if r.num_outputs == 0:
        raise Refused("the transaction has no outputs")

    sha_amounts = hashlib.sha256()
    sha_spks = hashlib.sha256()
    locks = _Locktime()
    seen = {}  # 30-bit tag of a prevout -> indices of inputs with that tag
    foreign = []
    total_in = 0
    weight = 0
    segwit = 0
    any_final_seq = True
    pos = view.first_scope
    for i in range(view.num_inputs):
        vin, inp, pos = read_input(view, i, pos)
        _check_duplicate(view, seen, i, vin)
        utxo = check_utxo(i, inp, vin)
        spk = utxo.script_pubkey
        total_in += utxo.value
        sha_amounts.update(utxo.value.to_bytes(8, "little"))
        sha_spks.update(spk.serialize())
        if vin.sequence != 0xFFFFFFFF:
            any_final_seq = False
        if r.version == 2:
            locks.add(i, inp)
        mine = match_input(i, inp, spk, keys, fp)
        kind = None
        if mine is None:
            foreign.append(i)
        else:
            kind = mine[0]
            sh = inp.sighash_type
            allowed = (None, SIGHASH_ALL, SIGHASH_DEFAULT) if kind == "p2tr" else (None, SIGHASH_ALL)
            if sh not in allowed:
                raise Refused("input %d: sighash type 0x%02x is not allowed (only ALL)" % (i, sh))
            if kind != "p2tr" and inp._txhash is None:
                raise Refused(
                    "input %d: previous transaction (non_witness_utxo) missing; "
                    "required for segwit v0 and legacy inputs" % i
                )
            r.ours.append(i)
        w, sw = _input_weight(kind, inp, spk)
        weight += w
        segwit += sw
    if not r.ours:
        raise Refused("no input of this PSBT belongs to this device")
    r.locktime = locks.result(view.locktime) if r.version == 2 else view.locktime
    r.sha_amounts = sha_amounts.digest()
    r.sha_scriptpubkeys = sha_spks.digest()

    total_out = 0
    sent = 0
    for j in range(view.num_outputs):
        out, pos = read_output(view, j, pos)
        spk = out.script_pubkey
        if out.value < 0 or out.value > MAX_MONEY:
            raise Refused("output %d: amount out of range" % j)
        total_out += out.value
        weight += 4 * (8 + len(compact.to_bytes(len(spk.data))) + len(spk.data))
        address = address_of(spk, net)
        mine = match_output(j, out, keys, fp, coin)
        if mine is not None and mine[0]:
            r.change.append({"address": address, "amount_sat": out.value, "path": format_path(mine[1])})
            continue
        sent += out.value
        r.spends.append({"address": address, "amount_sat": out.value})
        if mine is not None:
            r.warnings.append("output %d pays to this device at an unusual path %s" % (j, format_path(mine[1])))
        elif spk.data[:1] == b"\x6a":
            if out.value:
                r.warnings.append("output %d is an OP_RETURN output: its %d sat are burnt" % (j, out.value))
        elif spk.script_type() is None:
            r.warnings.append("output %d pays to a script with no address" % j)
    s = view.stream
    s.seek(pos)
    if s.read(1):
        raise BadPsbt("data after the last output")
    keys.clear()

    if total_out > total_in:
        raise Refused("outputs (%d sat) exceed inputs (%d sat)" % (total_out, total_in))
    r.fee_sat = total_in - total_out
    weight += 4 * (8 + len(compact.to_bytes(r.num_inputs)) + len(compact.to_bytes(r.num_outputs)))
    if segwit:
        # marker and flag, and an empty witness for each non-segwit input
        weight += 2 + (r.num_inputs - segwit)
    r.vsize = (weight + 3) // 4
    tenths = (r.fee_sat * 20 + r.vsize) // (2 * r.vsize)
    r.fee_rate_sat_vb = tenths / 10
    _warn(r, foreign, sent, total_in, tenths, any_final_seq)
    return r


def _check_duplicate(view, seen, i, vin):
    # A small-int tag per prevout keeps the check in a few bytes per input;
    # equal tags are compared in full.
    tag = (int.from_bytes(vin.txid[:4], "little") ^ vin.vout) & 0x3FFFFFFF
    prev = seen.get(tag)
    if prev is None:
        seen[tag] = i
        return
    if not isinstance(prev, list):
        prev = [prev]
        seen[tag] = prev
    for j in prev:
        other = view.tx.vin(j) if view.tx is not None else view.vin(j)
        if other.txid == vin.txid and other.vout == vin.vout:
            raise Refused("input %d spends the same coin as input %d" % (i, j))
    prev.append(i)


def _warn(r, foreign, sent, total_in, tenths, any_final_seq):
    w = r.warnings
    if len(foreign) == 1:
        w.insert(0, "input %d is not signed by this device" % foreign[0])
    elif foreign:
        w.insert(0, "inputs %s are not signed by this device" % _input_list(foreign))
    if r.fee_sat > FEE_ABSURD_SAT:
        w.append("fee of %d sat is above 0.01 BTC" % r.fee_sat)
    base = sent or total_in
    if base and r.fee_sat * 20 > base:
        pct = (r.fee_sat * 1000 + base // 2) // base
        what = "sent" if sent else "moved"
        w.append("fee is %d.%d%% of the amount %s" % (pct // 10, pct % 10, what))
    if tenths < 10:
        w.append("fee rate below 1 sat/vB: the network may not relay it")
    if r.locktime:
        if r.locktime < LOCKTIME_THRESHOLD:
            text = "locktime set: not valid before block %d" % r.locktime
        else:
            text = "locktime set: not valid before unix time %d" % r.locktime
        if any_final_seq:
            text += " (no effect: every input sequence is final)"
        w.append(text)
