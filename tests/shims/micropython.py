"""CPython stand-in for MicroPython's `micropython` module, for unit tests only.

It lets firmware modules that use @micropython.viper / @micropython.native and
viper's ptr8/ptr32/uint casts import and run on CPython. Viper integers wrap at
the machine word; firmware code masks explicitly to 32 bits, so plain Python
ints give the same results here.
"""

import builtins


def const(x):
    return x


def native(f):
    return f


def viper(f):
    return f


def _ptr(fmt):
    def cast(buf):
        return memoryview(buf).cast("B").cast(fmt) if fmt != "B" else memoryview(buf).cast("B")

    return cast


for _name, _fmt in (("ptr8", "B"), ("ptr16", "H"), ("ptr32", "I")):
    setattr(builtins, _name, _ptr(_fmt))
builtins.uint = lambda x: x & 0xFFFFFFFFFFFFFFFF


def mem_info(*a):
    pass
