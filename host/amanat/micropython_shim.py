"""CPython stand-in for MicroPython's `micropython` module: the firmware's
modules on CPython (the unit tests, and `amanat psbt sign`, which runs the
device's review and signer on the host). install() puts it in place.

It lets firmware modules that use @micropython.viper / @micropython.native and
viper's ptr8/ptr32/uint casts import and run on CPython. Viper integers wrap at
the machine word; firmware code masks explicitly to 32 bits, so plain Python
ints give the same results here. As in viper, arguments annotated ptr8/ptr16/
ptr32 arrive as pointers, pointer loads are unsigned and pointer stores keep
only the low 8/16/32 bits.
"""

import builtins
import functools


def const(x):
    return x


def native(f):
    return f


def viper(f):
    # Viper converts arguments annotated ptr8/ptr16/ptr32 from buffers to
    # pointers on entry; do the same so that such functions index words here.
    ann = getattr(f, "__annotations__", {})
    code = f.__code__
    names = code.co_varnames[: code.co_argcount]
    casts = [(i, ann[n]) for i, n in enumerate(names) if isinstance(ann.get(n), _PtrType)]
    if not casts:
        return f

    @functools.wraps(f)
    def call(*args):
        args = list(args)
        for i, cast in casts:
            if i < len(args):
                args[i] = cast(args[i])
        return f(*args)

    return call


class _Ptr:
    """A viper pointer: unsigned loads; stores keep only the item's width, as
    on the device, so viper code may store unmasked intermediate values."""

    __slots__ = ("_mv", "_mask")

    def __init__(self, buf, fmt, mask):
        if isinstance(buf, _Ptr):
            buf = buf._mv
        mv = memoryview(buf).cast("B")
        self._mv = mv if fmt == "B" else mv.cast(fmt)
        self._mask = mask

    def __getitem__(self, i):
        return self._mv[i]

    def __setitem__(self, i, v):
        self._mv[i] = v & self._mask


class _PtrType:
    def __init__(self, fmt, mask):
        self.fmt = fmt
        self.mask = mask

    def __call__(self, buf):
        return _Ptr(buf, self.fmt, self.mask)


for _name, _fmt, _mask in (("ptr8", "B", 0xFF), ("ptr16", "H", 0xFFFF), ("ptr32", "I", 0xFFFFFFFF)):
    setattr(builtins, _name, _PtrType(_fmt, _mask))
builtins.uint = lambda x: x & 0xFFFFFFFFFFFFFFFF


def mem_info(*a):
    pass


def install():
    """Make `import micropython` give this module, give gc MicroPython's
    heap figures (CPython has no fixed heap to report: 0), and let embit's
    libsecp256k1 binding take the device's ECDSA nonce callbacks."""
    import gc
    import sys

    sys.modules.setdefault("micropython", sys.modules[__name__])
    for name in ("mem_free", "mem_alloc"):
        if not hasattr(gc, name):
            setattr(gc, name, lambda: 0)
    _python_nonce_functions()


def _python_nonce_functions():
    """On the device, secp256k1.ecdsa_sign takes a Python nonce function
    fn(msg32, key32, algo16, data, attempt) -> 32 bytes or None (the
    anti-exfil signer fixes its nonce so). embit's ctypes binding hands the
    argument to libsecp256k1 as a C pointer: wrap such a callable in a C
    callback there."""
    import ctypes

    from embit.util import ctypes_secp256k1 as binding
    from embit.util import secp256k1

    if getattr(binding.ecdsa_sign, "takes_python_nonces", False):
        return
    c_nonce = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_uint)
    plain = binding.ecdsa_sign

    def ecdsa_sign(msg, secret, nonce_function=None, extra_data=None, context=binding._secp.ctx):
        if not callable(nonce_function):
            return plain(msg, secret, nonce_function, extra_data, context)

        def call(out, msg32, key32, algo16, data, attempt):
            k = nonce_function(ctypes.string_at(msg32, 32), ctypes.string_at(key32, 32), None,
                               ctypes.string_at(data, 32) if data else None, attempt)
            if k is None or len(k) != 32:
                return 0
            ctypes.memmove(out, bytes(k), 32)
            return 1

        callback = c_nonce(call)
        return plain(msg, secret, ctypes.cast(callback, ctypes.c_void_p).value, extra_data, context)

    ecdsa_sign.takes_python_nonces = True
    binding.ecdsa_sign = ecdsa_sign
    if secp256k1.ecdsa_sign is plain:
        secp256k1.ecdsa_sign = ecdsa_sign
