"""The BDK harness itself: a BDK wallet builds the PSBT, two cosigners sign it
(embit, private keys), BDK finalizes, libbitcoinkernel accepts the result."""

import bdkpython as bdk
import pytest
from embit import bip32, bip39
from embit.networks import NETWORKS
from embit.psbt import PSBT

import bdk_support as bs
from amanat import kernel, policy, psbt_tools

MNEMONICS = ["abandon " * 11 + "about",
             "legal winner thank year wave sausage worth useful legal winner thank yellow",
             "zoo " * 11 + "wrong"]
ROOTS = [bip32.HDKey.from_seed(bip39.mnemonic_to_seed(m), version=NETWORKS["regtest"]["xprv"]) for m in MNEMONICS]
PATH = "m/48h/1h/0h/2h"
KEYS = [f"[{r.my_fingerprint.hex()}/{PATH[2:]}]{r.derive(PATH).to_public().to_base58()}" for r in ROOTS]
PAY_TO = "bcrt1qm90ugl4d48jv8n6e5t9ln6t9zlpm5th68x4f8g"
TEMPLATES = {
    "wsh": "wsh(sortedmulti(2,@0,@1,@2))",
    # BDK 3.1.1 cannot parse sortedmulti_a (below): multi_a instead
    "tr": f"tr({bs.NUMS},multi_a(2,@0,@1,@2))",
}


def sign(raw: bytes, root) -> bytes:
    psbt = PSBT.parse(raw)
    assert psbt.sign_with(root) == len(psbt.inputs)
    return psbt.serialize()


@pytest.mark.parametrize("kind", list(TEMPLATES))
def test_bdk_psbt_signed_by_two_cosigners(kind):
    desc = bs.multisig(TEMPLATES[kind], KEYS)
    wallet = bs.make_wallet(*bs.branches(desc))
    ms = policy.parse(desc)
    for index, change in ((0, False), (3, True)):
        assert bs.address(wallet, index, change) == ms.address("regtest", index, change)
    bs.fund(wallet, [60_000, 45_000])
    raw = bs.build_psbt(wallet, PAY_TO, 90_000)
    unsigned = PSBT.parse(raw)
    assert len(unsigned.inputs) == 2 and len(unsigned.outputs) == 2  # both coins, and change
    signed = psbt_tools.combine([sign(raw, ROOTS[0]), sign(raw, ROOTS[2])])
    assert psbt_tools.verify_all_signatures(signed) == 4
    final = bs.finalize(wallet, signed)
    tx = bs.extract(final)
    kernel.verify_transaction(tx, bs.spent_outputs(raw))
    # our own finalizer makes the same transaction
    assert psbt_tools.finalize(signed).tx == tx


def test_bdk_does_not_parse_sortedmulti_a():
    desc = bs.branches(bs.multisig(f"tr({bs.NUMS},sortedmulti_a(2,@0,@1,@2))", KEYS))[0]
    with pytest.raises(bdk.DescriptorError):
        bdk.Descriptor(desc, bdk.NetworkKind.TEST)


def test_one_signature_does_not_finalize():
    wallet = bs.make_wallet(bs.multisig(TEMPLATES["wsh"], KEYS))
    bs.fund(wallet, [50_000])
    raw = bs.build_psbt(wallet, PAY_TO, 20_000)
    with pytest.raises(ValueError, match="could not finalize"):
        bs.finalize(wallet, sign(raw, ROOTS[1]))
