"""`amanat psbt sign`: the device's review and signer with a software key.
Its ECDSA signatures are the device's byte for byte (the device's code on
MicroPython with its own crypto, inprocess.sign), its PSBTs finalize into
transactions libbitcoinkernel accepts, and its key file never shows."""

import json

import pytest
from click.testing import CliRunner
from embit.psbt import PSBT

import fake_client as fc
from amanat import inprocess, psbt_tools, soft_signer
from amanat.cli import main
from test_psbt_tools import FORMS, ROOTS, spent, unsigned, wallet
from test_psbt_verify import KINDS, build

MNEMONICS = [fc.MNEMONIC, fc.OTHER_MNEMONIC]


def key_file(tmp_path, root, name="key.txt"):
    path = tmp_path / name
    path.write_text(root.to_base58() + "\n")
    return str(path)


def ecdsa_sigs(raw):
    return [dict(inp.partial_sigs) for inp in PSBT.parse(raw).inputs]


def test_single_sig_every_type_as_the_device_signs(tmp_path):
    built = build(KINDS + KINDS)
    raw = built.psbt.serialize()
    ks = soft_signer.load_key(key_file(tmp_path, ROOTS[0]), "regtest")
    soft = soft_signer.sign(raw, ks)
    assert soft.signatures == 8
    device, count = inprocess.sign(raw, fc.MNEMONIC, network="regtest")
    assert count == 8
    assert ecdsa_sigs(soft.psbt) == ecdsa_sigs(device)  # RFC6979 with low-R grinding, byte for byte
    assert sum(len(s) for s in ecdsa_sigs(soft.psbt)) == 6
    final = psbt_tools.finalize(soft.psbt)
    assert final.checked  # libbitcoinkernel ran every input's script
    assert soft.review["inputs"] == 8 and soft.review["fee_sat"] == sum(c[1] for c in built.spent) - sum(
        o.value for o in built.psbt.tx.vout)


@pytest.mark.parametrize("form", list(FORMS))
def test_registered_multisig_cosigns_and_finalizes(tmp_path, form):
    raw, funding = unsigned(form)
    desc = wallet(form)
    signed = []
    for n in (0, 1):
        ks = soft_signer.load_key(key_file(tmp_path, ROOTS[n], f"k{n}"), "regtest")
        signed.append(soft_signer.sign(raw, ks, [("vault", desc)]).psbt)
    if form != "tr":
        device, _ = inprocess.sign(raw, MNEMONICS[0], network="regtest", wallets=[("vault", desc)])
        assert ecdsa_sigs(signed[0]) == ecdsa_sigs(device)
    final = psbt_tools.finalize(psbt_tools.combine(signed))
    assert final.checked
    from amanat import kernel

    kernel.verify_transaction(final.tx, spent(funding))


def test_refusals_are_the_devices_and_nothing_is_written(tmp_path):
    raw, _ = unsigned("wsh")
    ks = soft_signer.load_key(key_file(tmp_path, ROOTS[0]), "regtest")
    with pytest.raises(soft_signer.Refused, match="not registered on this device"):
        soft_signer.sign(raw, ks)
    greedy = unsigned("wsh", pay=10_000, fee=40_000)[0]  # a fee far above the device's limit
    (tmp_path / "greedy.psbt").write_bytes(greedy)
    r = CliRunner().invoke(main, ["psbt", "sign", str(tmp_path / "greedy.psbt"), "--xprv-file", str(tmp_path / "key.txt"),
                                  "--network", "regtest", "--wallet", wallet("wsh")])
    assert r.exit_code == 5, r.output
    assert "fee" in r.stderr and not (tmp_path / "greedy.signed.psbt").exists()


@pytest.mark.parametrize("content,message", [
    ("not a key", "not an extended private key"),
    (ROOTS[0].to_public().to_base58(), "an extended public key"),
    (ROOTS[0].derive("m/84h/1h/0h").to_base58(), "not a master key (depth 3)"),
    (fc.root_key(network="main").to_base58(), "a mainnet key, and the network asked for is regtest"),
])
def test_key_file_errors_never_show_the_key(tmp_path, content, message):
    (tmp_path / "k").write_text(content)
    (tmp_path / "a.psbt").write_bytes(build(["p2wpkh"]).psbt.serialize())
    r = CliRunner().invoke(main, ["psbt", "sign", str(tmp_path / "a.psbt"), "--xprv-file", str(tmp_path / "k"),
                                  "--network", "regtest"])
    assert r.exit_code == 8 and message in r.output
    assert content not in r.output and content[4:30] not in r.output


def test_cli_signs_each_file_into_the_out_folder_in_a_pool(tmp_path):
    files = []
    for n in range(3):
        f = tmp_path / f"t{n}.psbt"
        f.write_bytes(build(KINDS[n:]).psbt.serialize())
        files.append(str(f))
    key = key_file(tmp_path, ROOTS[0])
    r = CliRunner().invoke(main, ["psbt", "sign", *files, "--xprv-file", key, "--out", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["files"]
    assert [x["signatures"] for x in rows] == [4, 3, 2]
    assert ROOTS[0].to_base58() not in r.output
    for f, x in zip(files, rows):
        out = tmp_path / "out" / (f.rsplit("/", 1)[1].replace(".psbt", ".signed.psbt"))
        assert x["output"] == str(out)
        assert psbt_tools.verify(out.read_bytes()).partial == x["signatures"]
    # the same ECDSA signatures as one process signing them in turn
    ks = soft_signer.load_key(key, "regtest")
    serial = soft_signer.sign_many([open(f, "rb").read() for f in files], ks, jobs=1)
    for s, x in zip(serial, rows):
        assert ecdsa_sigs(s.psbt) == ecdsa_sigs(open(x["output"], "rb").read())


def test_cli_base64_out_and_no_stdin(tmp_path):
    import base64

    (tmp_path / "a.psbt").write_text(base64.b64encode(build(["p2wpkh", "p2tr"]).psbt.serialize()).decode())
    key = key_file(tmp_path, ROOTS[0])
    r = CliRunner().invoke(main, ["psbt", "sign", str(tmp_path / "a.psbt"), "--xprv-file", key, "--base64"])
    assert r.exit_code == 0, r.output
    out = base64.b64decode((tmp_path / "a.signed.psbt").read_text())
    assert psbt_tools.verify(out).partial == 2
    r = CliRunner().invoke(main, ["psbt", "sign", "-", "--xprv-file", key])
    assert r.exit_code == 2 and "not stdin" in r.output
