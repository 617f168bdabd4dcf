"""Sign the reviewed inputs of a PSBT, streaming from one file to another.

sign_psbt_stream(src, dst, keystore, plan) signs the inputs the review's Plan
lists (review_psbt of the same, unchanged file), re-checking in this pass
that each is still the device's, and writes the whole signed PSBT to dst:

- ECDSA (p2wpkh, p2sh-p2wpkh, p2pkh): RFC6979 with low-R grinding, SIGHASH_ALL,
  into PSBT_IN_PARTIAL_SIG (0x02).
- Taproot key path (BIP86): BIP340 with fresh auxiliary randomness, into
  PSBT_IN_TAP_KEY_SIG (0x13) as BIP371 asks. embit's own taproot signing puts
  the signature in the final witness instead, so it is not used.
- A registered wallet's input (the plan gives its change and index, the
  Wallet and our cosigners in it): ECDSA as above with each of our keys over
  the multisig script (BIP143 for wsh and sh-wsh, legacy for sh); for tr,
  BIP340 script-path signatures over the multi_a leaf (BIP342, codesep
  0xffffffff) into PSBT_IN_TAP_SCRIPT_SIG (0x14 || x-only key || leaf hash).

The signatures go to a temporary stream first (psbt_view.Additions, one scope
per input), then the view copies the PSBT byte for byte with them added
(StrictView.write_signed). (embit's PSBTView.write_to re-serializes each
input scope, parsing its full previous transaction, and its
InputScope.update drops PSBT_IN_TAP_INTERNAL_KEY.)
"""

import io
import os

from embit import script
from embit.util import secp256k1

from .errors import Refused
from .ownership import KeyCache, match_input
from .psbt_view import (PSBT_IN_PARTIAL_SIG, PSBT_IN_TAP_KEY_SIG, PSBT_IN_TAP_SCRIPT_SIG, Additions, check_utxo,
                        open_view)
from .review import SIGHASH_ALL, SIGHASH_DEFAULT
from .wallets import LEAF_VERSION


def sign_psbt_stream(src, dst, keystore, plan, progress=None, sig_stream=None):
    """Sign plan.ours from src into dst; return the number of signatures.

    sig_stream: a writable and readable temporary stream (a flash file on the
    device), io.BytesIO if None. progress(done, total) is called after each
    input so that the caller can answer pings.
    """
    view = open_view(src)
    if view.num_inputs != plan.num_inputs or view.num_outputs != plan.num_outputs:
        raise Refused("the PSBT is not the one reviewed")
    view.use_review(plan.locktime, plan.sha_amounts, plan.sha_scriptpubkeys)
    added = Additions(sig_stream if sig_stream is not None else io.BytesIO())
    keys = KeyCache(keystore.root, private=True)
    ours = plan.ours
    n = view.num_inputs
    placeholders = [0] * n  # taproot sighash wants n values; the hashes are cached
    count = 0
    k = 0
    pos = view.first_scope
    try:
        for i in range(n):
            if k < len(ours) and ours[k] == i:
                at = plan.at[k] if k < len(plan.at) else None
                k += 1
                vin, inp, pos = view.read_input(i, pos)
                utxo = check_utxo(i, inp, vin)
                if at is not None:
                    count += _sign_wallet_input(view, i, inp, utxo, plan, at, keys, added, placeholders)
                else:
                    mine = match_input(i, inp, utxo.script_pubkey, keys, keystore.fingerprint)
                    if mine is None:
                        raise Refused("input %d: no longer belongs to this device" % i)
                    _sign_input(view, i, inp, utxo, mine, added, placeholders)
                    count += 1
            else:
                pos = view.skip_scope(pos)
            added.end_scope()
            if progress is not None:
                progress(i + 1, n)
    finally:
        keys.clear()
    if k != len(ours):
        raise Refused("the PSBT is not the one reviewed")
    added.rewind()
    view.write_signed(dst, added)
    return count


def _sign_input(view, i, inp, utxo, mine, added, placeholders):
    kind, hd, _ = mine
    if kind == "p2tr":
        sh = _taproot_sighash(i, inp)
        h = view.sighash_taproot(i, script_pubkeys=placeholders, values=placeholders, sighash=sh)
        tweaked = hd.key.taproot_tweak(b"")  # BIP86: no script tree
        sig = secp256k1.schnorrsig_sign(h, tweaked.secret, None, os.urandom(32))
        if sh != SIGHASH_DEFAULT:
            sig = bytes(sig) + bytes([sh])
        added.add(PSBT_IN_TAP_KEY_SIG, b"", sig)
        return
    pub = hd.get_public_key()
    if kind == "p2pkh":
        h = view.sighash_legacy(i, utxo.script_pubkey, SIGHASH_ALL)
    else:
        # BIP143 script code of a p2wpkh key
        h = view.sighash_segwit(i, script.p2pkh(pub), utxo.value, SIGHASH_ALL)
    sig = hd.key.sign(h).serialize() + bytes([SIGHASH_ALL])
    added.add(PSBT_IN_PARTIAL_SIG, pub.sec(), sig)


def _taproot_sighash(i, inp):
    sh = inp.sighash_type or SIGHASH_DEFAULT
    if sh not in (SIGHASH_DEFAULT, SIGHASH_ALL):  # the review refused others
        raise Refused("input %d: sighash type 0x%02x is not allowed (only ALL)" % (i, sh))
    return sh


def _sign_wallet_input(view, i, inp, utxo, plan, at, keys, added, placeholders):
    """Signatures of our keys in the wallet on input i; their number."""
    w = plan.wallet
    change, index = at
    d = w.derive(change, index)
    if d.script_pubkey.data != utxo.script_pubkey.data:
        raise Refused("input %d: no longer belongs to wallet %s" % (i, plan.wallet_name))
    if w.kind == "tr":
        sh = _taproot_sighash(i, inp)
        h = view.sighash_taproot(i, script_pubkeys=placeholders, values=placeholders, sighash=sh,
                                 ext_flag=1, script=d.leaf_script, leaf_version=LEAF_VERSION)
        lh = d.leaf_hash
    elif w.kind == "sh":
        h = view.sighash_legacy(i, d.redeem_script, SIGHASH_ALL)
    else:
        h = view.sighash_segwit(i, d.witness_script, utxo.value, SIGHASH_ALL)
    n = 0
    for c in plan.cosigners:
        cos = w.cosigners[c]
        hd = keys.get(list(cos.origin) + [change, index])
        pub = hd.get_public_key()
        # our key must be the one the wallet's script was built from
        if pub.sec() != cos.pubkey(change, index).sec():
            raise Refused("input %d: cosigner %d of wallet %s is not this device's key" % (i, c + 1, plan.wallet_name))
        if w.kind == "tr":
            sig = secp256k1.schnorrsig_sign(h, hd.key.secret, None, os.urandom(32))
            if sh != SIGHASH_DEFAULT:
                sig = bytes(sig) + bytes([sh])
            added.add(PSBT_IN_TAP_SCRIPT_SIG, pub.xonly() + lh, sig)
        else:
            sig = hd.key.sign(h).serialize() + bytes([SIGHASH_ALL])
            added.add(PSBT_IN_PARTIAL_SIG, pub.sec(), sig)
        n += 1
    return n
