"""BIP-322 proof of funds: a PSBT that proves control of coins and can
never move them, recognised from its structure (review.py calls this).

A proof's `to_sign` transaction spends, in input 0, output 0 of `to_spend`:
a transaction that cannot exist on chain (version 0, one input spending the
null outpoint with scriptSig OP_0 PUSH32 message_hash, one output of 0 sat
paying the challenge script, locktime 0). Its other inputs are the coins
proven; it has one output, 0 sat to a bare OP_RETURN. Every signature is
SIGHASH_ALL (DEFAULT on taproot), so each commits to input 0, which no
valid transaction can spend: none of them can ever move a coin.

The device rebuilds `to_spend` from the message it shows (the global field
PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE, 0x09, as BIP-322's PSBT extension names
it) and input 0's script, and refuses, naming the cause, a PSBT carrying a
message whose structure is not exactly this: that could be a real spend.
"""

import hashlib
from binascii import hexlify

from embit import compact

from .errors import BadPsbt, Refused

PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE = 0x09
TAG = b"BIP0322-signed-message"
MESSAGE_MAX = 1024
OP_RETURN = b"\x6a"


def message_hash(message):
    t = hashlib.sha256(TAG).digest()
    return hashlib.sha256(t + t + message).digest()


def to_spend_txid(message, challenge):
    """The txid (internal byte order) of BIP-322's to_spend for `message`
    and the challenge scriptPubKey (bytes)."""
    script_sig = b"\x00\x20" + message_hash(message)
    tx = (b"\x00\x00\x00\x00" + b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff" + compact.to_bytes(len(script_sig))
          + script_sig + b"\x00\x00\x00\x00" + b"\x01" + b"\x00" * 8 + compact.to_bytes(len(challenge)) + challenge
          + b"\x00\x00\x00\x00")
    return hashlib.sha256(hashlib.sha256(tx).digest()).digest()


def message_of(view):
    """The message of a proof (bytes), or None if the PSBT has none."""
    if view.seek_to_value(bytes([PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE])) is None:
        return None
    s = view.stream
    n = compact.read_from(s)
    if n > MESSAGE_MAX:
        raise Refused("the proof's message has %d bytes; the device shows at most %d" % (n, MESSAGE_MAX))
    message = s.read(n)
    if len(message) != n:
        raise BadPsbt("the PSBT ends inside the proof's message")
    return message


class Proof:
    """The checks of a PSBT that carries a message, as the review reads it."""

    def __init__(self, message, num_inputs, num_outputs):
        self.message = message
        if num_inputs < 1:
            raise BadPsbt("the transaction has no inputs")
        if num_outputs != 1:
            raise Refused("a proof of reserves has exactly one output (0 sat, bare OP_RETURN); this one has %d: "
                          "it would pay them" % num_outputs)
        self.coins = 0
        self.total = 0

    def input(self, i, vin, utxo, mine):
        """Input 0 is the message's to_spend; every other is one of the reserve's coins."""
        if i == 0:
            challenge = utxo.script_pubkey.data
            if vin.vout != 0 or bytes(reversed(vin.txid)) != to_spend_txid(self.message, challenge):
                raise Refused("input 0 does not spend the to_spend transaction of the message shown (BIP-322): "
                              "the message or the challenge differs, or this is a real spend")
            if utxo.value != 0:
                raise Refused("input 0 of a proof spends 0 sat; this one %d" % utxo.value)
            return
        if not mine:
            raise Refused("input %d is not the reserve's: a proof signs only its own coins" % i)
        self.coins += 1
        self.total += utxo.value

    def output(self, out):
        if out.value != 0 or out.script_pubkey.data != OP_RETURN:
            raise Refused("the proof's output must be 0 sat to a bare OP_RETURN; this one pays %d sat to another "
                          "script: it would be a real payment" % out.value)

    def to_dict(self):
        from .screens import message_text

        encoding, shown = message_text(self.message)
        return {"message": shown, "encoding": encoding, "length": len(self.message), "coins": self.coins,
                "total_sat": self.total, "message_sha256": hexlify(hashlib.sha256(self.message).digest()).decode()}
