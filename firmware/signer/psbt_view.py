"""Strict streaming access to a PSBT in flash, on top of embit's PSBTView.

The one module that touches embit's PSBT internals or the PSBT's raw bytes:
the review and the signer ask the view for scopes, prevouts, global xpubs,
BIP370 locktimes and the signed copy. One input or output scope at a time;
keys matched exactly (embit matches by prefix), duplicate keys refused, v0/v2
fields kept apart, previous transactions hashed as they stream past.
"""

import hashlib
from binascii import hexlify

from embit import compact
from embit.base import EmbitError
from embit.psbt import CompressMode, InputScope, OutputScope, read_string, ser_string, skip_string
from embit.psbtview import PSBTView
from embit.script import Script
from embit.transaction import TransactionInput, TransactionOutput

from .errors import BadPsbt, DeviceError, Refused

# PSBT key types the device reads or writes (BIP174, BIP370, BIP371).
PSBT_GLOBAL_UNSIGNED_TX = 0x00
PSBT_GLOBAL_XPUB = 0x01
PSBT_GLOBAL_TX_VERSION = 0x02
PSBT_GLOBAL_FALLBACK_LOCKTIME = 0x03
PSBT_GLOBAL_INPUT_COUNT = 0x04
PSBT_GLOBAL_OUTPUT_COUNT = 0x05
PSBT_GLOBAL_TX_MODIFIABLE = 0x06
PSBT_GLOBAL_VERSION = 0xFB
PSBT_IN_NON_WITNESS_UTXO = 0x00
PSBT_IN_WITNESS_UTXO = 0x01
PSBT_IN_PARTIAL_SIG = 0x02
PSBT_IN_SIGHASH_TYPE = 0x03
PSBT_IN_REDEEM_SCRIPT = 0x04
PSBT_IN_WITNESS_SCRIPT = 0x05
PSBT_IN_BIP32_DERIVATION = 0x06
PSBT_IN_FINAL_SCRIPTSIG = 0x07
PSBT_IN_FINAL_SCRIPTWITNESS = 0x08
PSBT_IN_PREVIOUS_TXID = 0x0E
PSBT_IN_OUTPUT_INDEX = 0x0F
PSBT_IN_SEQUENCE = 0x10
PSBT_IN_REQUIRED_TIME_LOCKTIME = 0x11
PSBT_IN_REQUIRED_HEIGHT_LOCKTIME = 0x12
PSBT_IN_TAP_KEY_SIG = 0x13
PSBT_IN_TAP_SCRIPT_SIG = 0x14
PSBT_IN_TAP_BIP32_DERIVATION = 0x16
PSBT_IN_TAP_INTERNAL_KEY = 0x17
PSBT_IN_TAP_MERKLE_ROOT = 0x18
PSBT_OUT_REDEEM_SCRIPT = 0x00
PSBT_OUT_WITNESS_SCRIPT = 0x01
PSBT_OUT_BIP32_DERIVATION = 0x02
PSBT_OUT_AMOUNT = 0x03
PSBT_OUT_SCRIPT = 0x04
PSBT_OUT_TAP_INTERNAL_KEY = 0x05
PSBT_OUT_TAP_TREE = 0x06
PSBT_OUT_TAP_BIP32_DERIVATION = 0x07

MAX_MONEY = 2100000000000000

# embit raises these (and its own errors) on malformed data; MemoryError and
# OSError are not about the PSBT and go up as they are.
PARSE_ERRORS = (EmbitError, ValueError, TypeError, IndexError, KeyError, RuntimeError, AssertionError,
                OverflowError)


class Bounded:
    """The PSBT file, refusing reads of more than it holds: a length field
    that claims megabytes is a BadPsbt, not an allocation that exhausts the
    heap. (Small reads past the end return short, as files do.)"""

    SLACK = 4096

    def __init__(self, f):
        self.f = f
        f.seek(0, 2)
        self.size = f.tell()
        f.seek(0)

    def read(self, n=-1):
        if n is not None and n > self.SLACK and n > self.size - self.f.tell():
            raise BadPsbt("a length field claims %d bytes, more than the PSBT holds" % n)
        return self.f.read(n)

    def readinto(self, buf):
        return self.f.readinto(buf)

    def seek(self, *args):
        return self.f.seek(*args)

    def tell(self):
        return self.f.tell()


def _why(e):
    return str(e) or type(e).__name__


class StrictView(PSBTView):
    """PSBTView that finds v2 fields by their exact key, and the public API
    the review and the signer use: scopes by position, prevouts, global
    xpubs, sighashes with the review's locktime and caches, the signed copy.

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

    _cursor = None  # (scope number, offset): where the last scope walk ended
    _tx_cursor = None  # (output number, offset) in a v0 unsigned transaction

    def _scope_at(self, n):
        """Offset of scope n (the inputs', then the outputs'), walking on from
        the last one asked for: a pass in order costs one step per scope."""
        c = self._cursor
        if c is None or c[0] > n:
            c = (0, self.first_scope)
        k, pos = c
        while k < n:
            pos = self.skip_scope(pos)
            k += 1
        self._cursor = (n, pos)
        return pos

    def vin(self, i, compress=None):
        # embit walks every scope before i again for each call: quadratic
        # time over a v2 PSBT's inputs.
        if i < 0 or i >= self.num_inputs:
            raise BadPsbt("no input %d" % i)
        if self.tx is not None:
            return self.tx.vin(i)
        found = _scan_scope(_at(self.stream, self._scope_at(i)), _V2_INPUT_KEYS, "input %d" % i, INPUT_RULES)
        return _v2_vin(i, found)

    def vout(self, j, compress=None):
        if j < 0 or j >= self.num_outputs:
            raise BadPsbt("no output %d" % j)
        s = self.stream
        if self.tx is None:
            found = _scan_scope(_at(s, self._scope_at(self.num_inputs + j)), _V2_OUTPUT_KEYS, "output %d" % j,
                                OUTPUT_RULES)
            amount, script = found.get(_AMOUNT), found.get(_SCRIPT)
            if amount is None or script is None:
                raise BadPsbt("output %d: amount or script missing" % j)
            return TransactionOutput(int.from_bytes(amount, "little"), Script(script))
        c = self._tx_cursor
        if c is None or c[0] > j:
            c = (0, self.tx.vout0_offset)
        k, pos = c
        s.seek(pos)
        while k < j:
            s.seek(8, 1)
            s.seek(compact.read_from(s), 1)
            k += 1
        self._tx_cursor = (j, s.tell())
        return TransactionOutput.read_from(s)

    def read_input(self, i, pos):
        """(vin, scope, offset of the next scope) of input i, whose scope is at pos."""
        return _read_input(self, i, pos)

    def read_output(self, j, pos):
        """(scope, offset of the next scope) of output j, whose scope is at pos."""
        return _read_output(self, j, pos)

    def skip_scope(self, pos):
        """Offset of the scope after the one at pos (not parsed)."""
        self.stream.seek(pos)
        return pos + self._skip_scope()

    def prevout(self, j):
        """The unsigned transaction's input j (txid, vout, sequence)."""
        return self.tx.vin(j) if self.tx is not None else self.vin(j)

    def check_end(self, pos):
        """BadPsbt unless the PSBT ends at pos, after its last output scope."""
        self.stream.seek(pos)
        if self.stream.read(1):
            raise BadPsbt("data after the last output")

    def global_xpubs(self):
        """The serialized extended keys (78 bytes) of the PSBT_GLOBAL_XPUB fields."""
        s = self.stream
        s.seek(self.offset + len(self.MAGIC))
        out = []
        while True:
            key = read_string(s)
            if not key:
                return out
            if key[0] == PSBT_GLOBAL_XPUB and len(key) == 79:
                out.append(key[1:])
            skip_string(s)

    def use_review(self, locktime, digests):
        """Sighashes from here on use the review's locktime and the
        transaction's hashes (TxHashes.digests(), taken in the review's one
        pass): embit's view knows only the v2 fallback locktime (the review
        applied BIP370's per-input requirements), and would read every input
        or output again to hash them."""
        self._locktime = locktime
        (self._hash_prevouts, self._hash_sequence, self._hash_outputs, self._hash_amounts,
         self._hash_script_pubkeys) = digests

    def write_signed(self, dst, added):
        """Copy the PSBT to dst byte for byte with the fields of `added` (an
        Additions, read from its start) in each input scope: fields the device
        does not know, proprietary ones and the PSBT version stay as they
        were, and no scope is ever held whole in RAM. A field added again
        replaces the old one (no duplicate key)."""
        src = self.stream
        buf = bytearray(256)
        src.seek(self.offset)
        _copy(src, dst, len(self.MAGIC), buf)
        _copy_globals(src, dst, buf)
        for _ in range(self.num_inputs):
            pairs = added.next_scope()
            _copy_scope(src, dst, [p[0] for p in pairs], buf)
            for key, value in pairs:
                ser_string(dst, key)
                ser_string(dst, value)
            dst.write(b"\x00")
        for _ in range(self.num_outputs):
            _copy_scope(src, dst, (), buf)
            dst.write(b"\x00")


class Additions:
    """Fields to add to each input scope, spooled to a stream (a flash file on
    the device) in PSBT scope format, one scope per input in order."""

    def __init__(self, stream):
        self.stream = stream
        self.base = stream.tell()

    def add(self, key_type, keydata, value):
        ser_string(self.stream, bytes([key_type]) + keydata)
        ser_string(self.stream, value)

    def end_scope(self):
        self.stream.write(b"\x00")

    def rewind(self):
        self.stream.seek(self.base)

    def next_scope(self):
        """[(key, value)] of the next scope."""
        s = self.stream
        pairs = []
        while True:
            n = compact.read_from(s)
            if n == 0:
                return pairs
            key = s.read(n)
            pairs.append((key, s.read(compact.read_from(s))))


class TxHashes:
    """The hashes a transaction's sighashes share (BIP143 hashPrevouts,
    hashSequence and hashOutputs as single SHA256, BIP341's sha_amounts and
    sha_scriptpubkeys), taken as the review reads each input and output;
    with `version` and the counts, also its txid (the serialization without
    witnesses, hashed as it streams by)."""

    def __init__(self, version=None, num_inputs=0, num_outputs=0):
        self.h = [hashlib.sha256() for _ in range(5)]
        self.tx = None
        if version is not None:
            self.tx = hashlib.sha256(version.to_bytes(4, "little") + compact.to_bytes(num_inputs))
            self._outputs = compact.to_bytes(num_outputs)

    def add_input(self, vin, utxo):
        h = self.h
        prevout = bytes(reversed(vin.txid)) + vin.vout.to_bytes(4, "little")
        sequence = vin.sequence.to_bytes(4, "little")
        h[0].update(prevout)
        h[1].update(sequence)
        h[3].update(utxo.value.to_bytes(8, "little"))
        h[4].update(utxo.script_pubkey.serialize())
        if self.tx is not None:
            if _native_segwit(utxo.script_pubkey.data):
                self.tx.update(prevout + b"\x00" + sequence)  # its scriptSig stays empty
            else:
                self.tx = None  # a legacy or P2SH input's scriptSig, unknown yet, is in the txid

    def add_output(self, out):
        data = out.value.to_bytes(8, "little") + out.script_pubkey.serialize()
        self.h[2].update(data)
        if self.tx is not None:
            if self._outputs is not None:
                self.tx.update(self._outputs)
                self._outputs = None
            self.tx.update(data)

    def digests(self):
        return tuple([h.digest() for h in self.h])

    def txid(self, locktime):
        """The txid (hex, as explorers show it), once every input and output
        was added; None if an input is not native segwit (its signature,
        in the scriptSig, changes the txid)."""
        if self.tx is None:
            return None
        self.tx.update(locktime.to_bytes(4, "little"))
        return hexlify(bytes(reversed(hashlib.sha256(self.tx.digest()).digest()))).decode()


def _native_segwit(spk):
    """Whether a scriptPubKey is a witness program (BIP141: version, push of 2-40 bytes)."""
    return 4 <= len(spk) <= 42 and (spk[0] == 0 or 0x51 <= spk[0] <= 0x60) and spk[1] == len(spk) - 2


_MODIFIABLE = bytes([PSBT_GLOBAL_TX_MODIFIABLE])


def _copy_globals(src, dst, buf):
    """Copy the global scope with its separator; BIP370: a signer signing
    with SIGHASH_ALL clears the Inputs and Outputs Modifiable flags."""
    while True:
        n = compact.read_from(src)
        dst.write(compact.to_bytes(n))
        if n == 0:
            return
        key = src.read(n)
        size = compact.read_from(src)
        dst.write(key)
        dst.write(compact.to_bytes(size))
        if key == _MODIFIABLE and size == 1:
            dst.write(bytes([src.read(1)[0] & ~0x03]))
        else:
            _copy(src, dst, size, buf)


def _copy_scope(src, dst, replaced, buf):
    """Copy one scope without its separator, leaving out keys in `replaced`."""
    while True:
        n = compact.read_from(src)
        if n == 0:
            return
        key = src.read(n)
        size = compact.read_from(src)
        if key in replaced:
            src.seek(size, 1)
            continue
        dst.write(compact.to_bytes(n))
        dst.write(key)
        dst.write(compact.to_bytes(size))
        _copy(src, dst, size, buf)


def _copy(src, dst, n, buf):
    mv = memoryview(buf)
    while n > 0:
        got = src.readinto(mv[: min(n, len(buf))])
        if not got:
            raise BadPsbt("the PSBT ends early")
        dst.write(mv[:got])
        n -= got


class _Input(InputScope):
    """embit does not check that a non_witness_utxo fills its field: the rest of
    the value would be parsed as more keys, which no other parser sees."""

    def read_value(self, stream, k):
        if k != bytes([PSBT_IN_NON_WITNESS_UTXO]):
            return InputScope.read_value(self, stream, k)
        start = stream.tell()
        n = compact.read_from(stream)
        end = stream.tell() + n
        stream.seek(start)
        InputScope.read_value(self, stream, k)
        if stream.tell() != end:
            raise BadPsbt("non_witness_utxo does not fill its field")


def open_view(stream):
    """StrictView of the PSBT at the start of `stream`, global scope checked."""
    stream = Bounded(stream)
    try:
        view = StrictView.view(stream)
        _check_globals(view)
    except DeviceError:
        raise
    except PARSE_ERRORS as e:
        raise BadPsbt("not a valid PSBT: %s" % _why(e))
    return view


_V2_GLOBALS = (PSBT_GLOBAL_TX_VERSION, PSBT_GLOBAL_FALLBACK_LOCKTIME, PSBT_GLOBAL_INPUT_COUNT,
               PSBT_GLOBAL_OUTPUT_COUNT, PSBT_GLOBAL_TX_MODIFIABLE)


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
        if key == bytes([PSBT_GLOBAL_UNSIGNED_TX]):
            _check_field(key, b"", GLOBAL_RULES, "global")
            tx_len = compact.read_from(s)
            tx_start = s.tell()
            s.seek(tx_len, 1)
        elif key[0] in GLOBAL_RULES:
            _check_field(key, read_string(s), GLOBAL_RULES, "global")
        else:
            skip_string(s)
    version = view.version or 0
    if version not in (0, 2):
        raise BadPsbt("unsupported PSBT version %d" % version)
    if version == 0:
        for t in _V2_GLOBALS:
            if bytes([t]) in seen:
                raise BadPsbt("PSBT v0 with a v2 global field %02x" % t)
        _check_unsigned_tx(view, tx_start, tx_len)
    else:
        if tx_len is not None:
            raise BadPsbt("PSBT v2 with an unsigned transaction")
        if bytes([PSBT_GLOBAL_TX_VERSION]) not in seen:
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


def _fixed(n):
    return lambda v: len(v) == n


def _tap_derivation(v):
    # compact count, that many 32-byte leaf hashes, a fingerprint and a path:
    # a count larger than the value would make embit allocate it.
    if not v:
        return False
    size = {0xFD: 3, 0xFE: 5, 0xFF: 9}.get(v[0], 1)
    n = v[0] if size == 1 else int.from_bytes(v[1:size], "little")
    rest = len(v) - size - 4
    return n <= rest // 32 and (rest - 32 * n) % 4 == 0


def _derivation(v):
    return len(v) >= 4 and len(v) % 4 == 0


# Per scope: key type -> (key data allowed, check of the value). BIP174/370/371
# fix these sizes; embit would read a wrong-sized field as some other number.
INPUT_RULES = {
    PSBT_IN_NON_WITNESS_UTXO: (False, None),
    PSBT_IN_WITNESS_UTXO: (False, None),
    PSBT_IN_PARTIAL_SIG: (True, None),
    PSBT_IN_SIGHASH_TYPE: (False, _fixed(4)),
    PSBT_IN_REDEEM_SCRIPT: (False, None),
    PSBT_IN_WITNESS_SCRIPT: (False, None),
    PSBT_IN_BIP32_DERIVATION: (True, _derivation),
    PSBT_IN_FINAL_SCRIPTSIG: (False, None),
    PSBT_IN_FINAL_SCRIPTWITNESS: (False, None),
    PSBT_IN_PREVIOUS_TXID: (False, _fixed(32)),
    PSBT_IN_OUTPUT_INDEX: (False, _fixed(4)),
    PSBT_IN_SEQUENCE: (False, _fixed(4)),
    PSBT_IN_REQUIRED_TIME_LOCKTIME: (False, _fixed(4)),
    PSBT_IN_REQUIRED_HEIGHT_LOCKTIME: (False, _fixed(4)),
    PSBT_IN_TAP_KEY_SIG: (False, lambda v: len(v) in (64, 65)),
    PSBT_IN_TAP_BIP32_DERIVATION: (True, _tap_derivation),
    PSBT_IN_TAP_INTERNAL_KEY: (False, _fixed(32)),
    PSBT_IN_TAP_MERKLE_ROOT: (False, _fixed(32)),
}
OUTPUT_RULES = {
    PSBT_OUT_REDEEM_SCRIPT: (False, None),
    PSBT_OUT_WITNESS_SCRIPT: (False, None),
    PSBT_OUT_BIP32_DERIVATION: (True, _derivation),
    PSBT_OUT_AMOUNT: (False, _fixed(8)),
    PSBT_OUT_SCRIPT: (False, None),
    PSBT_OUT_TAP_INTERNAL_KEY: (False, _fixed(32)),
    PSBT_OUT_TAP_TREE: (False, None),
    PSBT_OUT_TAP_BIP32_DERIVATION: (True, _tap_derivation),
}
GLOBAL_RULES = {
    PSBT_GLOBAL_UNSIGNED_TX: (False, None),
    PSBT_GLOBAL_TX_VERSION: (False, _fixed(4)),
    PSBT_GLOBAL_FALLBACK_LOCKTIME: (False, _fixed(4)),
    PSBT_GLOBAL_INPUT_COUNT: (False, None),
    PSBT_GLOBAL_OUTPUT_COUNT: (False, None),
    PSBT_GLOBAL_TX_MODIFIABLE: (False, _fixed(1)),
    PSBT_GLOBAL_VERSION: (False, _fixed(4)),
}


def _check_field(key, value, rules, where):
    rule = rules.get(key[0])
    if rule is None:
        return
    keydata, check = rule
    if len(key) > 1 and not keydata:
        raise BadPsbt("%s: key %s must not carry key data" % (where, hexlify(key).decode()))
    if check is not None and not check(value):
        raise BadPsbt("%s: field %s has a malformed value" % (where, hexlify(key[:1]).decode()))


def _scan_scope(s, want, where, rules):
    """Check a scope for duplicate keys and malformed fixed fields; return the
    values of keys in `want`."""
    keys = set()
    found = {}
    while True:
        key = read_string(s)
        if not key:
            return found
        if key in keys:
            raise BadPsbt("%s: duplicate key %s" % (where, hexlify(key).decode()))
        keys.add(key)
        rule = rules.get(key[0])
        if key in want or (rule is not None and rule[1] is not None):
            value = read_string(s)
            _check_field(key, value, rules, where)
            if key in want:
                found[key] = value
        else:
            if rule is not None:
                _check_field(key, b"", rules, where)  # key data only: no value check
            skip_string(s)


_TXID, _VOUT, _SEQ = bytes([PSBT_IN_PREVIOUS_TXID]), bytes([PSBT_IN_OUTPUT_INDEX]), bytes([PSBT_IN_SEQUENCE])
_V2_INPUT_KEYS = (_TXID, _VOUT, _SEQ)
_AMOUNT, _SCRIPT = bytes([PSBT_OUT_AMOUNT]), bytes([PSBT_OUT_SCRIPT])
_V2_OUTPUT_KEYS = (_AMOUNT, _SCRIPT)


def _at(s, pos):
    s.seek(pos)
    return s


def _v2_vin(i, found):
    txid = found.get(_TXID)
    vout = found.get(_VOUT)
    seq = found.get(_SEQ, b"\xff\xff\xff\xff")
    if txid is None or len(txid) != 32 or vout is None or len(vout) != 4 or len(seq) != 4:
        raise BadPsbt("input %d: previous txid or output index missing or malformed" % i)
    return TransactionInput(bytes(reversed(txid)), int.from_bytes(vout, "little"), sequence=int.from_bytes(seq, "little"))


def _read_input(view, i, pos):
    where = "input %d" % i
    s = view.stream
    try:
        s.seek(pos)
        found = _scan_scope(s, _V2_INPUT_KEYS, where, INPUT_RULES)
        end = s.tell()
        vin = view.tx.vin(i) if view.tx is not None else _v2_vin(i, found)
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


def _read_output(view, j, pos):
    where = "output %d" % j
    s = view.stream
    try:
        s.seek(pos)
        _scan_scope(s, (), where, OUTPUT_RULES)
        end = s.tell()
        vout = view.vout(j) if view.tx is not None else None
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


def has_previous_tx(inp):
    """True if input scope `inp` carries its full previous transaction
    (non_witness_utxo; PARTIAL mode keeps only its hash and the spent output)."""
    return inp._txhash is not None


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


LOCKTIME_THRESHOLD = 500000000
_TIME_LOCK, _HEIGHT_LOCK = bytes([PSBT_IN_REQUIRED_TIME_LOCKTIME]), bytes([PSBT_IN_REQUIRED_HEIGHT_LOCKTIME])


class Locktime:
    """nLockTime of a v2 PSBT as BIP370 determines it: the inputs' required
    locktimes win over the fallback. add() each input scope, then result()."""

    def __init__(self):
        self.any = False
        self.time_ok = True
        self.height_ok = True
        self.time = 0
        self.height = 0

    def add(self, i, inp):
        t = inp.unknown.get(_TIME_LOCK)
        h = inp.unknown.get(_HEIGHT_LOCK)
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


def sha256_without(stream, prefix):
    """SHA-256 of the PSBT in `stream`, from its start to its end, with every
    field whose key starts with `prefix` left out (anti-exfil's two rounds
    must agree on all the rest). Streamed: no field is held whole. BadPsbt
    if it ends inside a field."""
    h = hashlib.sha256()
    buf = bytearray(256)
    mv = memoryview(buf)
    stream.seek(0)
    h.update(stream.read(5))

    def compact_int():
        first = stream.read(1)
        if not first:
            return None
        n = first[0]
        if n < 0xFD:
            return n
        size = 2 if n == 0xFD else 4 if n == 0xFE else 8
        rest = stream.read(size)
        if len(rest) != size:
            raise BadPsbt("the PSBT ends early")
        return int.from_bytes(rest, "little")

    def pass_on(n, keep):
        while n > 0:
            got = stream.readinto(mv[: min(n, len(buf))])
            if not got:
                raise BadPsbt("the PSBT ends early")
            if keep:
                h.update(mv[:got])
            n -= got

    while True:
        n = compact_int()
        if n is None:
            return h.digest()
        if n == 0:
            h.update(b"\x00")
            continue
        head = stream.read(min(n, len(prefix)))
        keep = head != prefix
        if keep:
            h.update(compact.to_bytes(n))
            h.update(head)
        pass_on(n - len(head), keep)
        size = compact_int()
        if size is None:
            raise BadPsbt("the PSBT ends early")
        if keep:
            h.update(compact.to_bytes(size))
        pass_on(size, keep)
