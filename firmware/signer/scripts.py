"""Single-key scripts, the coin type and standard paths: what the device can rebuild from its keys."""

from embit import script

from .keyexpr import HARDENED

# purpose -> single-key script type (BIP44/49/84/86)
PURPOSE_TYPES = {44: "p2pkh", 49: "p2sh-p2wpkh", 84: "p2wpkh", 86: "p2tr"}
TYPE_PURPOSE = {v: k for k, v in PURPOSE_TYPES.items()}


def script_for(kind, pub):
    """scriptPubKey of a single-key output of `kind` for PublicKey `pub`."""
    if kind == "p2wpkh":
        return script.p2wpkh(pub)
    if kind == "p2sh-p2wpkh":
        return script.p2sh(script.p2wpkh(pub))
    if kind == "p2pkh":
        return script.p2pkh(pub)
    if kind == "p2tr":
        return script.p2tr(pub)
    raise ValueError(kind)


def coin_type(network):
    """BIP44 coin type of an embit network: 0 on main, 1 on every test network."""
    return 0 if network["name"] == "Mainnet" else 1


MAX_CHANGE_INDEX = 1000000


def is_standard_path(path, kind, coin):
    """purpose'/coin'/account'/chain/index with the purpose of `kind`, coin
    type `coin`, chain 0 or 1 and index <= 1,000,000."""
    H = HARDENED
    return (
        len(path) == 5
        and path[0] == H + TYPE_PURPOSE.get(kind, -1)
        and path[1] == H + coin
        and path[2] >= H
        and path[3] in (0, 1)
        and path[4] <= MAX_CHANGE_INDEX
    )
