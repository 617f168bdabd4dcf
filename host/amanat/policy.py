"""Multisig wallet policies: what officers bring, as the one descriptor the device registers.

Three inputs are understood (docs/protocol.md, "Registered multisig wallets"):
a descriptor (checksum optional, `'` or `h`), a BIP388 wallet policy (template
plus key list) and the Coldcard/Sparrow multisig text export. All become one
canonical text: `h` notation, xpub/tpub keys with origins, `/<0;1>/*`, checksum.
The same parser reads single-address multisig descriptors (HWI displayaddress)
and derives scripts on the host, so the device's answers can be checked.
"""

import json
import re
from dataclasses import dataclass, replace

from embit import bip32, ec
from embit.descriptor import Descriptor
from embit.networks import NETWORKS

from . import descriptors
from .descriptors import DescriptorError, Key, format_path, parse_path, with_checksum
from .errors import AmanatError

MAX_KEYS = 15
NUMS = "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0"  # BIP341 unspendable key

# public SLIP-132 versions -> the plain xpub/tpub ones descriptors use
XPUB, TPUB = NETWORKS["main"]["xpub"], NETWORKS["test"]["xpub"]
SLIP132 = {bytes.fromhex(v): XPUB for v in ("0488b21e", "049d7cb2", "04b24746", "0295b43f", "02aa7ed3")}
SLIP132.update({bytes.fromhex(v): TPUB for v in ("043587cf", "044a5262", "045f1cf6", "024289ef", "02575483")})

# form -> (opening, closing, allowed script functions)
FORMS = {
    "sh-wsh": ("sh(wsh(", "))", ("sortedmulti", "multi")),
    "wsh": ("wsh(", ")", ("sortedmulti", "multi")),
    "sh": ("sh(", ")", ("sortedmulti", "multi")),
    "tr": ("tr(", ")", ("sortedmulti_a", "multi_a")),
}
# Coldcard/Sparrow "Format:" -> form (Coldcard files are always sortedmulti, BIP67)
FILE_FORMATS = {"P2WSH": "wsh", "P2SH-P2WSH": "sh-wsh", "P2WSH-P2SH": "sh-wsh", "P2SH": "sh"}


class PolicyError(AmanatError):
    """A wallet description that is malformed or not a form the device registers."""


@dataclass(frozen=True)
class Policy:
    name: str | None
    descriptor: str  # canonical, with checksum


@dataclass(frozen=True)
class Multisig:
    form: str  # "wsh", "sh-wsh", "sh", "tr"
    func: str  # "sortedmulti", "multi", "sortedmulti_a", "multi_a"
    threshold: int
    keys: tuple  # of Key
    internal: Key | None = None  # tr only

    def text(self) -> str:
        head, tail, _ = FORMS[self.form]
        inner = f"{self.func}({self.threshold},{','.join(k.text() for k in self.keys)})"
        if self.form == "tr":
            inner = self.internal.text() + "," + inner
        return head + inner + tail

    @property
    def ranged(self) -> bool:
        return any(k.wildcard or k.multipath for k in self.all_keys())

    def all_keys(self):
        return list(self.keys) + ([self.internal] if self.internal else [])

    def script_pubkey(self, index: int | None = None, change: bool = False):
        """The scriptPubKey at `index` (branch 1 of `/<0;1>` if change), derived on the host."""
        tr = self.form == "tr"

        def hexkey(k):
            try:
                pub = k.pubkey(index, 1 if change else 0)
            except DescriptorError as e:
                raise PolicyError(e.message) from None
            return pub.xonly().hex() if tr else pub.sec().hex()

        inner = f"{self.func}({self.threshold},{','.join(hexkey(k) for k in self.keys)})"
        head, tail, _ = FORMS[self.form]
        # Hex keys only: embit 0.8 ignores the steps after a non-ranged xpub.
        text = head + (hexkey(self.internal) + "," if tr else "") + inner + tail
        return Descriptor.from_string(text).script_pubkey()

    def address(self, network: str, index: int | None = None, change: bool = False) -> str:
        return self.script_pubkey(index, change).address(NETWORKS[network])


# ---------------------------------------------------------------- descriptors


def parse(text: str) -> Multisig:
    """Parse a multisig descriptor of a supported form; a checksum, if any, must be right."""
    form, func, k, tokens, first = _split(_strip_checksum(text))
    internal = parse_key(first, "the internal key") if first is not None else None
    if internal is not None and not internal.is_extended and len(internal.key) != 64:
        raise PolicyError("the internal key must be x-only (64 hex digits) or an xpub")
    keys = tuple(parse_key(t, f"key {n}") for n, t in enumerate(tokens, 1))
    ms = Multisig(form, func, k, keys, internal)
    if not 1 <= k <= len(keys):
        raise PolicyError(f"threshold {k} of {len(keys)} keys: it must be 1 to {len(keys)}")
    if len(keys) > MAX_KEYS:
        raise PolicyError(f"{len(keys)} keys: at most {MAX_KEYS}")
    size = 64 if form == "tr" else 66
    if any(not key.is_extended and len(key.key) != size for key in keys):
        raise PolicyError(f"hex keys in {func} must be {'x-only' if size == 64 else 'compressed'} "
                          f"({size} hex digits)")
    return ms


def _split(body: str):
    """(form, function, threshold, key texts, tr internal key text or None)."""
    for form, (head, tail, funcs) in FORMS.items():
        if body.startswith(head) and body.endswith(tail):
            inner = body[len(head) : len(body) - len(tail)]
            break
    else:
        raise PolicyError(f"unsupported form: {_short(body)} (wsh, sh(wsh), sh with (sorted)multi, "
                          "or tr with (sorted)multi_a)")
    first = None
    if form == "tr":
        first, sep, inner = inner.partition(",")
        if not sep or "(" in first or "{" in first:
            raise PolicyError("tr() needs an internal key, then one multi_a/sortedmulti_a leaf")
    m = re.fullmatch(r"([a-z_]+)\(([^(),]*),([^()]*)\)", inner)
    if not m or m.group(1) not in funcs:
        raise PolicyError(f"unsupported script in {form.replace('-', '(')}(): {_short(inner)} "
                          f"(expected {' or '.join(funcs)})")
    func, k, rest = m.groups()
    if not k.isdigit():
        raise PolicyError(f"threshold {k!r} is not a number")
    return form, func, int(k), rest.split(","), first


def parse_key(text: str, what: str = "key") -> Key:
    """One key expression (descriptors.parse_key), an extended key in its
    xpub/tpub form; `what` names it in errors ("key 2")."""
    try:
        k = descriptors.parse_key(text)
    except DescriptorError as e:
        raise PolicyError(f"{what}: {e.message}") from None
    return replace(k, key=_xpub(k.key, f"{what} ({_short(text)})")) if k.is_extended else k


def _xpub(text: str, what: str) -> str:
    """The xpub/tpub form of an extended public key (SLIP-132 versions converted)."""
    try:
        k = descriptors.extended_key(text)
    except DescriptorError as e:
        raise PolicyError(f"{what}: {e.message}") from None
    if k.version not in SLIP132:
        raise PolicyError(f"{what}: unknown extended key version {k.version.hex()}")
    return k.to_base58(version=SLIP132[k.version])


def check_wallet(ms: Multisig) -> None:
    """Refuse what the device would: keys that are not `[origin]xpub/<0;1>/*`,
    origins that do not fit their xpub, duplicates, mixed networks."""
    nets = set()
    seen = {}
    for n, k in enumerate(ms.all_keys(), 1):
        what = "the internal key" if k is ms.internal else f"key {n}"
        if k is ms.internal and not k.is_extended:
            _xonly_point(k.key)
            continue
        if k.fingerprint is None or not k.is_extended or k.steps or k.multipath != (0, 1) or not k.wildcard:
            raise PolicyError(f"{what} ({_short(k.text())}): give it as [fingerprint/path]xpub/<0;1>/* "
                              "(or /**)")
        hd = bip32.HDKey.from_string(k.key)
        if hd.depth != len(k.origin) or (k.origin and hd.child_number != k.origin[-1]):
            raise PolicyError(f"{what} ({k.fingerprint.hex()}): origin path {k.path} does not fit the "
                              f"xpub (depth {hd.depth}, child {format_path([hd.child_number], '')})")
        _check_fingerprint(k, hd, what)
        # the same key may come with another parent fingerprint, depth or child number
        material = (hd.key.sec(), hd.chain_code)
        if material in seen:
            raise PolicyError(f"{what} ({k.fingerprint.hex()}) is the same key as key {seen[material]}")
        seen[material] = n
        nets.add(k.key[:4])
    if len(nets) > 1:
        raise PolicyError("the keys mix networks (xpub and tpub)")


def _check_fingerprint(k: Key, hd: bip32.HDKey, what: str) -> None:
    """The origin fingerprint, where the xpub shows it: a master key's own
    fingerprint, or the parent fingerprint of a key one level below it."""
    if hd.depth == 0 and hd.my_fingerprint != k.fingerprint:
        shown = f"the xpub is a master key of fingerprint {hd.my_fingerprint.hex()}"
    elif hd.depth == 1 and hd.fingerprint != k.fingerprint:
        shown = f"the xpub's parent fingerprint is {hd.fingerprint.hex()}"
    else:
        return
    raise PolicyError(f"{what} ({k.fingerprint.hex()}): {shown}, not the origin's {k.fingerprint.hex()}")


def _xonly_point(hexkey: str) -> None:
    try:
        ec.PublicKey.from_xonly(bytes.fromhex(hexkey))
    except Exception:
        raise PolicyError(f"the internal key {hexkey} is not a point on the curve") from None


def canonical(text: str) -> str:
    """The canonical registrable descriptor, with checksum."""
    ms = parse(text)
    check_wallet(ms)
    return with_checksum(ms.text())


def from_descriptor(text: str, name: str | None = None) -> Policy:
    return Policy(name, canonical(text))


def _strip_checksum(text: str) -> str:
    try:
        return descriptors.strip_checksum(text)
    except DescriptorError as e:
        raise PolicyError(e.message) from None


# ---------------------------------------------------------------- BIP388


_PLACEHOLDER = re.compile(r"@([0-9]+)((?:/\*\*|/<[0-9]+;[0-9]+>/\*)?)")


def from_wallet_policy(template: str, keys: list[str], name: str | None = None) -> Policy:
    """A BIP388 policy: `@i/**` in `template` stands for keys[i]/<0;1>/*."""
    if not isinstance(template, str) or not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PolicyError("a wallet policy is a template text and a list of key texts")
    uses, order = set(), []
    for m in _PLACEHOLDER.finditer(template):
        i, tail = int(m.group(1)), m.group(2)
        if m.group(1) != str(i):  # @01 would stand for key 1 under another spelling
            raise PolicyError(f"@{m.group(1)} in the template: placeholders have no leading zeros")
        if not tail:
            raise PolicyError(f"@{i} in the template has no /** or /<0;1>/* after it")
        if (i, tail) in uses:
            raise PolicyError(f"@{i}{tail} appears twice in the template")
        uses.add((i, tail))
        if i not in order:
            if i != len(order):
                raise PolicyError(f"@{i} appears before @{len(order)}: placeholders must be numbered "
                                  "in order of first use")
            order.append(i)
    if len(order) != len(keys):
        raise PolicyError(f"the template uses {len(order)} keys but {len(keys)} are given")
    canon = [_policy_key(n, k) for n, k in enumerate(keys)]
    _, _, _, tokens, first = _split(_strip_checksum(template))
    for t in tokens + ([first] if first is not None else []):
        if not _PLACEHOLDER.fullmatch(t) and not (t is first and _is_hex(t)):
            raise PolicyError(f"the template holds a key that is not a placeholder: {_short(t)}")
    text = _PLACEHOLDER.sub(lambda m: canon[int(m.group(1))] + m.group(2), template)
    return from_descriptor(text, name)


def _policy_key(n: int, text: str) -> str:
    """The canonical text of keys[n], which must be one `[fp/path]xpub` and
    nothing else: it is pasted into the template, where `,` `)` or `#` would
    add keys or change the script."""
    if re.search(r"[\s,()#<>*]", text):
        raise PolicyError(f"keys[{n}]: {_short(text)!r} is not one key [fingerprint/path]xpub "
                          "(the template gives /**)")
    k = parse_key(text, f"keys[{n}]")
    if k.steps or k.multipath or k.wildcard:
        raise PolicyError(f"keys[{n}]: no derivation steps after the xpub in a wallet policy")
    if k.fingerprint is None or not k.is_extended:
        raise PolicyError(f"keys[{n}]: {_short(text)!r} is not one key [fingerprint/path]xpub")
    return k.text()


# ---------------------------------------------------------------- Coldcard/Sparrow file


def from_multisig_file(text: str) -> Policy:
    """The Coldcard/Sparrow multisig export: Name/Policy/Derivation/Format lines and
    `FINGERPRINT: xpub` lines; a Derivation line (or `# derivation:` comment) applies
    to the keys after it."""
    name = policy = form = derivation = None
    keys, headers = [], {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        comment = re.fullmatch(r"#\s*derivation\s*:\s*(\S+)", line, re.I)
        if comment:
            line = "Derivation: " + comment.group(1)
        elif not line or line.startswith("#"):
            continue
        label, sep, value = (part.strip() for part in line.partition(":"))
        if not sep:
            raise PolicyError(f"line {no}: expected 'Label: value', got {_short(line)!r}")
        low = label.lower()
        if low in ("name", "policy", "format"):  # Derivation may repeat: it applies to the keys after it
            if low in headers:
                raise PolicyError(f"line {no}: a second {label}: line (the first is on line {headers[low]})")
            headers[low] = no
        if low == "name":
            name = value
        elif low == "policy":
            m = re.fullmatch(r"([0-9]+)\s*(?:of|/)\s*([0-9]+)", value, re.I)
            if not m:
                raise PolicyError(f"line {no}: policy {value!r} is not 'M of N'")
            policy = (int(m.group(1)), int(m.group(2)), no)
        elif low == "derivation":
            try:
                derivation = parse_path(value)
            except DescriptorError as e:
                raise PolicyError(f"line {no}: {e}") from None
        elif low == "format":
            form = FILE_FORMATS.get(value.upper())
            if form is None:
                raise PolicyError(f"line {no}: format {value!r} is not one of P2WSH, P2SH-P2WSH, P2SH")
        elif re.fullmatch(r"[0-9a-fA-F]{8}", label):
            if derivation is None:
                raise PolicyError(f"line {no}: key {label} comes before any Derivation: line")
            xpub = _xpub(value, f"line {no} ({label})")
            keys.append((no, Key(bytes.fromhex(label), tuple(derivation), xpub, (), (0, 1), True).text()))
        else:
            raise PolicyError(f"line {no}: unknown line {_short(line)!r}")
    if form is None:
        raise PolicyError("no Format: line (P2WSH, P2SH-P2WSH or P2SH)")
    if policy is None:
        raise PolicyError("no Policy: line (M of N)")
    if not keys:
        raise PolicyError("no keys (FINGERPRINT: xpub lines)")
    m, n, no = policy
    if n != len(keys):
        raise PolicyError(f"line {no}: policy says {n} keys but the file has {len(keys)}")
    head, tail, _ = FORMS[form]
    try:
        desc = f"{head}sortedmulti({m},{','.join(k for _, k in keys)}){tail}"
        return Policy(name, canonical(desc))
    except PolicyError as e:
        hit = re.match(r"key ([0-9]+)", e.message)
        if hit:  # name the file's line, not the key's position
            raise PolicyError(f"line {keys[int(hit.group(1)) - 1][0]}: {e.message}") from None
        raise


# ---------------------------------------------------------------- any of them


def from_bsms(text: str, network: str | None = None) -> str:
    """The descriptor of a BIP-129 descriptor record (its first address
    checked when `network` is given); PolicyError naming what is wrong."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) != 4 or lines[0] != "BSMS 1.0":
        raise PolicyError("not a BSMS 1.0 descriptor record (4 lines: BSMS 1.0, descriptor, paths, address)")
    template, paths, first = lines[1:]
    if paths not in ("/0/*,/1/*", "No path restrictions"):
        raise PolicyError(f"BSMS path restrictions {paths!r}: only /0/*,/1/* are supported")
    desc = template.split("#")[0].replace("/**", "/<0;1>/*")
    ms = parse(desc)
    if network is not None and ms.address(network, 0 if ms.ranged else None) != first:
        raise PolicyError(f"the BSMS record's first address {first} is not this descriptor's")
    return desc



def load(text: str, name: str | None = None) -> Policy:
    """A policy from a file's text or a descriptor: any of the four forms
    (descriptor, BIP388 JSON, Coldcard/Sparrow file, BIP-129 BSMS record).
    `name` overrides the one the file gives; the result's name is checked."""
    stripped = text.strip()
    if stripped.startswith("BSMS"):
        pol = from_descriptor(from_bsms(stripped, _address_network(stripped)))
    elif stripped[:1] in ("{", "["):
        try:
            obj = json.loads(stripped)
        except ValueError as e:
            raise PolicyError(f"not valid JSON: {e}") from None
        except RecursionError:  # deeply nested brackets
            raise PolicyError("not valid JSON: nested too deeply") from None
        if not isinstance(obj, dict):
            raise PolicyError('a wallet policy file is {"name", "template", "keys"}')
        pol = from_wallet_policy(obj.get("template", obj.get("descriptor_template")),
                                 obj.get("keys", obj.get("keys_info")), obj.get("name"))
    else:
        lines = [ln.strip() for ln in stripped.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if lines and re.match(r"[a-z_]+\(", lines[0]):
            if len(lines) > 1:
                raise PolicyError("give one descriptor (with /<0;1>/* for receive and change), not several")
            pol = from_descriptor(lines[0])
        else:
            pol = from_multisig_file(text)
    final = name if name is not None else pol.name
    return Policy(check_name(final) if final is not None else None, pol.descriptor)


def _address_network(text: str) -> str | None:
    """The network of a BSMS record's first address, to check it against."""
    first = text.splitlines()[-1].strip().lower()
    for prefix, network in (("bcrt1", "regtest"), ("bc1", "main"), ("tb1", "test")):
        if first.startswith(prefix):
            return network
    return None


def check_name(name: str) -> str:
    """The device's wallet-name rule (firmware/signer/wallets.py, check_name),
    checked before the device is asked."""
    if not isinstance(name, str):  # JSON files may hold anything
        raise PolicyError(f"wallet name {name!r}: a text of 1 to 16 printable ASCII characters")
    if not 1 <= len(name) <= 16 or not all(" " <= c <= "~" for c in name):
        raise PolicyError(f"wallet name {name!r}: 1 to 16 printable ASCII characters")
    if name[0] == " " or name[-1] == " ":  # "Vault" and "Vault " would look the same on the screen
        raise PolicyError(f"wallet name {name!r}: must not start or end with a space")
    return name


def _is_hex(s: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F]+", s))


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."
