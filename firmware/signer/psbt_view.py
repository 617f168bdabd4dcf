"""Strict streaming access to a PSBT in flash, on top of embit's PSBTView.

One input or output scope at a time; keys matched exactly (embit matches
by prefix), duplicate keys refused, v0/v2 fields kept apart, previous
transactions hashed as they stream past. Used by the review and the signer.
"""

from binascii import hexlify

from embit import compact
from embit.base import EmbitError
from embit.psbt import CompressMode, InputScope, OutputScope, read_string, skip_string
from embit.psbtview import PSBTView
from embit.transaction import TransactionInput

from .errors import BadPsbt, DeviceError, Refused

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
    stream = Bounded(stream)
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
    0x00: (False, None), 0x01: (False, None), 0x02: (True, None), 0x03: (False, _fixed(4)),
    0x04: (False, None), 0x05: (False, None), 0x06: (True, _derivation), 0x07: (False, None),
    0x08: (False, None), 0x0E: (False, _fixed(32)), 0x0F: (False, _fixed(4)), 0x10: (False, _fixed(4)),
    0x11: (False, _fixed(4)), 0x12: (False, _fixed(4)), 0x13: (False, lambda v: len(v) in (64, 65)),
    0x16: (True, _tap_derivation), 0x17: (False, _fixed(32)), 0x18: (False, _fixed(32)),
}
OUTPUT_RULES = {
    0x00: (False, None), 0x01: (False, None), 0x02: (True, _derivation), 0x03: (False, _fixed(8)),
    0x04: (False, None), 0x05: (False, _fixed(32)), 0x06: (False, None), 0x07: (True, _tap_derivation),
}
GLOBAL_RULES = {
    0x00: (False, None), 0x02: (False, _fixed(4)), 0x03: (False, _fixed(4)), 0x04: (False, None),
    0x05: (False, None), 0x06: (False, _fixed(1)), 0xFB: (False, _fixed(4)),
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


V2_INPUT_KEYS = (b"\x0e", b"\x0f", b"\x10")


def read_input(view, i, pos):
    """(vin, scope, offset of the next scope) of input i, whose scope is at pos."""
    where = "input %d" % i
    s = view.stream
    try:
        s.seek(pos)
        found = _scan_scope(s, V2_INPUT_KEYS, where, INPUT_RULES)
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
        _scan_scope(s, (), where, OUTPUT_RULES)
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
