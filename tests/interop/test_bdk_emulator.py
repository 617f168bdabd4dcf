"""Interop with a real wallet engine: BDK builds PSBTs for wallets registered
on the emulator, the emulator and a second officer's key sign, BDK finalizes,
libbitcoinkernel accepts. BDK 3.1.1 cannot parse sortedmulti_a, so the
taproot wallet here uses multi_a (sortedmulti_a is covered by
tests/e2e/test_multisig.py with PSBTs built by amanat.txbuild)."""

import pytest
from embit import bip32, bip39
from embit.networks import NETWORKS
from embit.psbt import PSBT

import bdk_support as bs
from amanat import kernel, policy, psbt_tools
from e2e_support import MNEMONIC

NET = NETWORKS["regtest"]
PATH = "m/48h/1h/0h/2h"
DEVICE = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
OFFICER = bip32.HDKey.from_seed(bip39.mnemonic_to_seed("legal winner thank year wave sausage worth useful legal "
                                                       "winner thank yellow"), version=NET["xprv"])
BACKUP = bip32.HDKey.from_seed(bip39.mnemonic_to_seed("zoo " * 11 + "wrong"), version=NET["xprv"])
KEYS = [f"[{r.my_fingerprint.hex()}/{PATH[2:]}]{r.derive(PATH).to_public().to_base58()}"
        for r in (DEVICE, OFFICER, BACKUP)]
PAY_TO = "bcrt1qm90ugl4d48jv8n6e5t9ln6t9zlpm5th68x4f8g"
TEMPLATES = {"wsh": "wsh(sortedmulti(2,@0,@1,@2))", "tr": f"tr({bs.NUMS},multi_a(2,@0,@1,@2))"}


@pytest.mark.parametrize("kind,coins", [("wsh", 2), ("wsh", 12), ("tr", 2), ("tr", 12)])
def test_bdk_wallet_signed_by_the_emulator_and_an_officer(auto_emu, kind, coins):
    desc = policy.load(bs.multisig(TEMPLATES[kind], KEYS)).descriptor
    name = f"{kind}-{coins}"
    with auto_emu.client() as c:
        reg = c.register_wallet(name, desc)
        assert reg["descriptor"] == desc
    wallet = bs.make_wallet(*bs.branches(desc))
    bs.fund(wallet, [40_000 + 1_000 * i for i in range(coins)], tag=coins)
    total = sum(40_000 + 1_000 * i for i in range(coins))
    # Every coin is needed (the smallest is 40,000 sat), and change remains.
    raw = bs.build_psbt(wallet, PAY_TO, total - 20_000)
    assert len(PSBT.parse(raw).inputs) == coins

    with auto_emu.client() as c:
        signed = c.sign_psbt(raw)
    assert signed.signatures == coins
    review = signed.review
    assert review["wallet"] == name
    assert len(review["change"]) == 1 and review["change"][0]["wallet"] == name
    assert [s["address"] for s in review["spends"]] == [PAY_TO]
    assert psbt_tools.verify_all_signatures(signed.psbt) == coins

    officer = PSBT.parse(raw)
    assert officer.sign_with(OFFICER) == coins
    both = psbt_tools.combine([signed.psbt, officer.serialize()])
    final = bs.finalize(wallet, both)
    kernel.verify_transaction(bs.extract(final), bs.spent_outputs(raw))
