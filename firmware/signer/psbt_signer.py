"""Sign the reviewed inputs of a PSBT, streaming from one file to another.

sign_psbt_stream(src, dst, keystore, review) signs the inputs listed in
review.ours (review_psbt of the same, unchanged file) and writes the whole
signed PSBT to dst:

- ECDSA (p2wpkh, p2sh-p2wpkh, p2pkh): RFC6979 with low-R grinding, SIGHASH_ALL,
  into PSBT_IN_PARTIAL_SIG (0x02).
- Taproot key path (BIP86): BIP340 with fresh auxiliary randomness, into
  PSBT_IN_TAP_KEY_SIG (0x13) as BIP371 asks. embit's own taproot signing puts
  the signature in the final witness instead, so it is not used.
- A registered wallet's input (review.plan gives its change and index, the
  review's Wallet and our cosigners in it): ECDSA as above with each of our
  keys over the multisig script (BIP143 for wsh and sh-wsh, legacy for sh);
  for tr, BIP340 script-path signatures over the multi_a leaf (BIP342,
  codesep 0xffffffff) into PSBT_IN_TAP_SCRIPT_SIG (0x14 || x-only key ||
  leaf hash).

The signatures go to a temporary stream first (one scope per input), then the
PSBT is copied byte for byte with them added: fields the device does not know,
proprietary ones and the PSBT version stay as they were, and no scope is ever
held whole in RAM. (embit's PSBTView.write_to re-serializes each input scope,
parsing its full previous transaction, and its InputScope.update drops
PSBT_IN_TAP_INTERNAL_KEY.)
"""

import io
import os

from embit import compact, script
from embit.psbt import ser_string
from embit.util import secp256k1

from .errors import BadPsbt, Refused
from .psbt_view import check_utxo, open_view, read_input
from .ownership import LEAF_VERSION, KeyCache, leaf_hash, match_input
from .review import SIGHASH_ALL, SIGHASH_DEFAULT, review_psbt

PSBT_IN_PARTIAL_SIG = b"\x02"
PSBT_IN_TAP_KEY_SIG = b"\x13"
PSBT_IN_TAP_SCRIPT_SIG = b"\x14"


def sign_psbt_stream(src, dst, keystore, review, progress=None, sig_stream=None):
    """Sign review.ours from src into dst; return the number of signatures.

    sig_stream: a writable and readable temporary stream (a flash file on the
    device), io.BytesIO if None. progress(done, total) is called after each
    input so that the caller can answer pings.
    """
    view = open_view(src)
    if view.num_inputs != review.num_inputs or view.num_outputs != review.num_outputs:
        raise Refused("the PSBT is not the one reviewed")
    # embit's view knows only the v2 fallback locktime; the review applied
    # BIP370's per-input requirements. The BIP341 hashes of all amounts and
    # scripts were taken during the review, so they are not read per input.
    view._locktime = review.locktime
    view._hash_amounts = review.sha_amounts
    view._hash_script_pubkeys = review.sha_scriptpubkeys
    sigs = sig_stream if sig_stream is not None else io.BytesIO()
    base = sigs.tell()
    keys = KeyCache(keystore.root, private=True)
    ours = review.ours
    n = view.num_inputs
    placeholders = [0] * n  # taproot sighash wants n values; the hashes are cached
    count = 0
    k = 0
    pos = view.first_scope
    try:
        for i in range(n):
            if k < len(ours) and ours[k] == i:
                at = review.plan[k] if k < len(review.plan) else None
                k += 1
                vin, inp, pos = read_input(view, i, pos)
                utxo = check_utxo(i, inp, vin)
                if at is not None:
                    count += _sign_wallet_input(view, i, inp, utxo, review, at, keys, sigs, placeholders)
                else:
                    mine = match_input(i, inp, utxo.script_pubkey, keys, keystore.fingerprint)
                    if mine is None:
                        raise Refused("input %d: no longer belongs to this device" % i)
                    _sign_input(view, i, inp, utxo, mine, sigs, placeholders)
                    count += 1
            else:
                view.stream.seek(pos)
                pos += view._skip_scope()
            sigs.write(b"\x00")
            if progress is not None:
                progress(i + 1, n)
    finally:
        keys.clear()
    if k != len(ours):
        raise Refused("the PSBT is not the one reviewed")
    sigs.seek(base)
    _write_signed(view, dst, sigs)
    return count


def _sign_input(view, i, inp, utxo, mine, sigs, placeholders):
    kind, hd, _ = mine
    if kind == "p2tr":
        sh = _taproot_sighash(i, inp)
        h = view.sighash_taproot(i, script_pubkeys=placeholders, values=placeholders, sighash=sh)
        tweaked = hd.key.taproot_tweak(b"")  # BIP86: no script tree
        sig = secp256k1.schnorrsig_sign(h, tweaked.secret, None, os.urandom(32))
        if sh != SIGHASH_DEFAULT:
            sig = bytes(sig) + bytes([sh])
        ser_string(sigs, PSBT_IN_TAP_KEY_SIG)
        ser_string(sigs, sig)
        return
    pub = hd.get_public_key()
    if kind == "p2pkh":
        h = view.sighash_legacy(i, utxo.script_pubkey, SIGHASH_ALL)
    else:
        # BIP143 script code of a p2wpkh key
        h = view.sighash_segwit(i, script.p2pkh(pub), utxo.value, SIGHASH_ALL)
    sig = hd.key.sign(h).serialize() + bytes([SIGHASH_ALL])
    ser_string(sigs, PSBT_IN_PARTIAL_SIG + pub.sec())
    ser_string(sigs, sig)


def _taproot_sighash(i, inp):
    sh = inp.sighash_type or SIGHASH_DEFAULT
    if sh not in (SIGHASH_DEFAULT, SIGHASH_ALL):  # the review refused others
        raise Refused("input %d: sighash type 0x%02x is not allowed (only ALL)" % (i, sh))
    return sh


def _sign_wallet_input(view, i, inp, utxo, review, at, keys, sigs, placeholders):
    """Signatures of our keys in the wallet on input i; their number."""
    w = review.wallet_obj
    change, index = at
    d = w.derive(change, index)
    if d.script_pubkey.data != utxo.script_pubkey.data:
        raise Refused("input %d: no longer belongs to wallet %s" % (i, review.wallet))
    if w.kind == "tr":
        sh = _taproot_sighash(i, inp)
        h = view.sighash_taproot(i, script_pubkeys=placeholders, values=placeholders, sighash=sh,
                                 ext_flag=1, script=d.leaf_script, leaf_version=LEAF_VERSION)
        lh = leaf_hash(d.leaf_script)
    elif w.kind == "sh":
        h = view.sighash_legacy(i, d.redeem_script, SIGHASH_ALL)
    else:
        h = view.sighash_segwit(i, d.witness_script, utxo.value, SIGHASH_ALL)
    n = 0
    for c in review.cosigners:
        cos = w.cosigners[c]
        hd = keys.get(list(cos.origin) + [change, index])
        pub = hd.get_public_key()
        # our key must be the one the wallet's script was built from
        if pub.sec() != cos.pubkey(change, index).sec():
            raise Refused("input %d: cosigner %d of wallet %s is not this device's key" % (i, c + 1, review.wallet))
        if w.kind == "tr":
            sig = secp256k1.schnorrsig_sign(h, hd.key.secret, None, os.urandom(32))
            if sh != SIGHASH_DEFAULT:
                sig = bytes(sig) + bytes([sh])
            ser_string(sigs, PSBT_IN_TAP_SCRIPT_SIG + pub.xonly() + lh)
        else:
            sig = hd.key.sign(h).serialize() + bytes([SIGHASH_ALL])
            ser_string(sigs, PSBT_IN_PARTIAL_SIG + pub.sec())
        ser_string(sigs, sig)
        n += 1
    return n


def _read_pairs(s):
    """Key-value pairs of one scope of the signature stream."""
    pairs = []
    while True:
        n = compact.read_from(s)
        if n == 0:
            return pairs
        key = s.read(n)
        pairs.append((key, s.read(compact.read_from(s))))


def _write_signed(view, dst, sigs):
    src = view.stream
    buf = bytearray(256)
    src.seek(view.offset)
    _copy(src, dst, view.first_scope - view.offset, buf)
    for _ in range(view.num_inputs):
        added = _read_pairs(sigs)
        _copy_scope(src, dst, [p[0] for p in added], buf)
        for key, value in added:
            ser_string(dst, key)
            ser_string(dst, value)
        dst.write(b"\x00")
    for _ in range(view.num_outputs):
        _copy_scope(src, dst, (), buf)
        dst.write(b"\x00")


def _copy_scope(src, dst, replaced, buf):
    """Copy one scope without its separator, leaving out keys in `replaced`
    (a signature made again replaces the old one: no duplicate key)."""
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


def sign_psbt(raw, keystore, registry=None, limits=None):
    """(signed PSBT bytes, signatures added, review) of PSBT bytes, in RAM."""
    src = io.BytesIO(raw)
    review = review_psbt(src, keystore, registry, limits)
    dst = io.BytesIO()
    count = sign_psbt_stream(src, dst, keystore, review)
    return dst.getvalue(), count, review
