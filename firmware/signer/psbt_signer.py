"""Sign the reviewed inputs of a PSBT, streaming from one file to another.

sign_psbt_stream(src, dst, keystore, plan, registry) signs the inputs that the
review of the same, unchanged file found ours: it finds them again by the
same rules (ownership.py), as Trezor's signer re-checks in its signing pass
what its approver saw, so that the review keeps no list that grows with the
transaction, only its Plan. It writes the whole signed PSBT to dst:

- ECDSA (p2wpkh, p2sh-p2wpkh, p2pkh): RFC6979 with low-R grinding, SIGHASH_ALL,
  into PSBT_IN_PARTIAL_SIG (0x02).
- Taproot key path (BIP86): BIP340 with fresh auxiliary randomness, into
  PSBT_IN_TAP_KEY_SIG (0x13) as BIP371 asks. embit's own taproot signing puts
  the signature in the final witness instead, so it is not used.
- A registered wallet's input (its change and index found again, the plan's
  Wallet and our cosigners in it): ECDSA as above with each of our keys over
  the multisig script (BIP143 for wsh and sh-wsh, legacy for sh); for tr,
  BIP340 script-path signatures over the multi_a leaf (BIP342, codesep
  0xffffffff) into PSBT_IN_TAP_SCRIPT_SIG (0x14 || x-only key || leaf hash).

With `rounds` (anti_exfil.Commit or anti_exfil.Reveal) every ECDSA
signature goes through anti-exfil's two rounds instead: the first adds the
device's openings and signs nothing, the second signs with the host's
entropy; taproot signatures are made in the second round, as without it.

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
from .ownership import KeyCache, Wallets, classify_input, owner_of
from .psbt_view import (PSBT_IN_PARTIAL_SIG, PSBT_IN_TAP_KEY_SIG, PSBT_IN_TAP_SCRIPT_SIG, Additions, check_utxo,
                        open_view)
from .review import SIGHASH_ALL, SIGHASH_DEFAULT
from .wallets import LEAF_VERSION


def sign_psbt_stream(src, dst, keystore, plan, registry=None, progress=None, sig_stream=None, rounds=None):
    """Sign the inputs the plan's review found ours, from src into dst; return
    the number of signatures.

    Each input is classified again by the review's own rules (ownership.py),
    with the registered wallets of `registry` as the review had them: an
    input is signed only if it belongs to plan.owner, and the PSBT is refused
    unless exactly plan.signing inputs do. sig_stream: a writable and
    readable temporary stream (a flash file on the device), io.BytesIO if
    None. progress(done, total) is called after each input so that the
    caller can answer pings. rounds: see the module's docstring.
    """
    view = open_view(src)
    if view.num_inputs != plan.num_inputs or view.num_outputs != plan.num_outputs:
        raise Refused("the PSBT is not the one reviewed")
    view.use_review(plan.locktime, plan.digests)
    added = Additions(sig_stream if sig_stream is not None else io.BytesIO())
    signer = _Signer(added, rounds)
    keys = KeyCache(keystore.root, private=True)
    wallets = Wallets(registry, []) if registry is not None else None
    n = view.num_inputs
    placeholders = _Unread(n)
    signed = 0
    pos = view.first_scope
    try:
        for i in range(n):
            vin, inp, pos = view.read_input(i, pos)
            utxo = check_utxo(i, inp, vin)
            mine = classify_input(i, inp, utxo.script_pubkey, keys, keystore.fingerprint, wallets)
            if mine is not None:
                if owner_of(mine) != plan.owner:
                    raise Refused("the PSBT is not the one reviewed")
                signed += 1
                if mine[0] == "wallet":
                    _sign_wallet_input(view, i, inp, utxo, plan, mine[1], keys, signer, placeholders)
                else:
                    _sign_input(view, i, inp, utxo, mine[1], signer, placeholders)
            added.end_scope()
            if progress is not None:
                progress(i + 1, n)
    finally:
        keys.clear()
    if signed != plan.signing:
        raise Refused("the PSBT is not the one reviewed")
    if rounds is not None and rounds.signs:
        rounds.done()
    added.rewind()
    view.write_signed(dst, added)
    return signer.count


class _Signer:
    """Makes each signature into `added`: ECDSA as RFC 6979 with low R, or
    by anti-exfil's rounds; BIP340 (none in a first anti-exfil round)."""

    def __init__(self, added, rounds):
        self.added = added
        self.rounds = rounds
        self.count = 0

    def ecdsa(self, i, inp, hd, pub, h):
        sec = pub.sec()
        if self.rounds is None:
            self.added.add(PSBT_IN_PARTIAL_SIG, sec, hd.key.sign(h).serialize() + bytes([SIGHASH_ALL]))
        else:
            self.rounds.ecdsa(i, inp, hd, sec, h, self.added)
            if not self.rounds.signs:
                return
        self.count += 1

    def schnorr(self, h, secret, sh, key_type, keydata):
        if self.rounds is not None and not self.rounds.signs:
            return
        sig = secp256k1.schnorrsig_sign(h, secret, None, os.urandom(32))
        if sh != SIGHASH_DEFAULT:
            sig = bytes(sig) + bytes([sh])
        self.added.add(key_type, keydata, sig)
        self.count += 1


class _Unread:
    """The n spent amounts and scripts that embit's taproot sighash asks for:
    never read, the review took BIP341's hashes over them (psbt_view.TxHashes).
    A list of n would grow with the PSBT; reading one (ANYONECANPAY, which
    the review refuses) is an error, never a wrong sighash."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        raise Refused("input %d: a sighash type that needs the spent outputs again" % i)


def _sign_input(view, i, inp, utxo, mine, signer, placeholders):
    kind, hd, _ = mine
    if kind == "p2tr":
        sh = _taproot_sighash(i, inp)
        h = view.sighash_taproot(i, script_pubkeys=placeholders, values=placeholders, sighash=sh)
        tweaked = hd.key.taproot_tweak(b"")  # BIP86: no script tree
        signer.schnorr(h, tweaked.secret, sh, PSBT_IN_TAP_KEY_SIG, b"")
        return
    pub = hd.get_public_key()
    if kind == "p2pkh":
        h = view.sighash_legacy(i, utxo.script_pubkey, SIGHASH_ALL)
    else:
        # BIP143 script code of a p2wpkh key
        h = view.sighash_segwit(i, script.p2pkh(pub), utxo.value, SIGHASH_ALL)
    signer.ecdsa(i, inp, hd, pub, h)


def _taproot_sighash(i, inp):
    sh = inp.sighash_type or SIGHASH_DEFAULT
    if sh not in (SIGHASH_DEFAULT, SIGHASH_ALL):  # the review refused others
        raise Refused("input %d: sighash type 0x%02x is not allowed (only ALL)" % (i, sh))
    return sh


def _sign_wallet_input(view, i, inp, utxo, plan, at, keys, signer, placeholders):
    """Signatures of our keys in the wallet on input i (at: the WalletInput
    classify_input found)."""
    w = plan.wallet
    change, index = at.change, at.index
    d = w.derive(change, index)
    if d.script_pubkey.data != utxo.script_pubkey.data:
        raise Refused("input %d: no longer belongs to wallet %s" % (i, plan.owner))
    if w.kind == "tr":
        sh = _taproot_sighash(i, inp)
        h = view.sighash_taproot(i, script_pubkeys=placeholders, values=placeholders, sighash=sh,
                                 ext_flag=1, script=d.leaf_script, leaf_version=LEAF_VERSION)
        lh = d.leaf_hash
    elif w.kind == "sh":
        h = view.sighash_legacy(i, d.redeem_script, SIGHASH_ALL)
    else:
        h = view.sighash_segwit(i, d.witness_script, utxo.value, SIGHASH_ALL)
    for c in plan.cosigners:
        cos = w.cosigners[c]
        hd = keys.get(list(cos.origin) + [change, index])
        pub = hd.get_public_key()
        # our key must be the one the wallet's script was built from
        if pub.sec() != cos.pubkey(change, index).sec():
            raise Refused("input %d: cosigner %d of wallet %s is not this device's key" % (i, c + 1, plan.owner))
        if w.kind == "tr":
            signer.schnorr(h, hd.key.secret, sh, PSBT_IN_TAP_SCRIPT_SIG, pub.xonly() + lh)
        else:
            signer.ecdsa(i, inp, hd, pub, h)
