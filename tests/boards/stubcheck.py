"""A small static check of MicroPython code against the micropython-*-stubs .pyi files.

Neither pyright nor mypy is installed, so this does the part that matters for
board code that cannot run here: every `module.name` used exists in that
module's stub, every call to a stubbed function or class passes names and a
number of arguments that one of its signatures accepts, and every method
called on an object of a stubbed class exists. Object types are followed
through local names (`x = machine.UART(...)`, `Pin = machine.Pin`), through
`self.attr = ...` and through the constructor arguments of the checked
modules' own classes; calls on anything else are not checked.
"""

import ast
from importlib import metadata
from pathlib import Path


def stub_root():
    """site-packages holding the ESP32 stubs, or None if not installed."""
    try:
        return Path(str(metadata.distribution("micropython-esp32-stubs").locate_file("")))
    except metadata.PackageNotFoundError:
        return None


class Stub:
    def __init__(self, tree):
        self.defs = {}  # name -> [FunctionDef] | ClassDef | None (a value)
        for node in _walk_top(tree.body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.defs.setdefault(node.name, [])
                if isinstance(self.defs[node.name], list):
                    self.defs[node.name].append(node)
            elif isinstance(node, ast.ClassDef):
                self.defs[node.name] = node
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.defs.setdefault(t.id, None)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.defs.setdefault(node.target.id, None)
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    self.defs.setdefault(a.asname or a.name, None)


def _walk_top(body):
    # Definitions sit at the top level or inside `if sys.version_info...:`.
    for node in body:
        if isinstance(node, (ast.If, ast.Try)):
            yield from _walk_top(node.body)
            yield from _walk_top(node.orelse)
        else:
            yield node


def class_members(cls):
    members = {}
    for node in _walk_top(cls.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            members.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    members.setdefault(t.id, None)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members.setdefault(node.target.id, None)
    return members


def accepts(fn, npos, kws, bound):
    """Whether a call with npos positional arguments and keywords kws fits fn."""
    a = fn.args
    params = a.posonlyargs + a.args
    if bound and params and params[0].arg in ("self", "cls"):
        params = params[1:]
    if npos > len(params) and a.vararg is None:
        return False
    posonly = {p.arg for p in a.posonlyargs}
    by_name = {p.arg for p in params[npos:]} - posonly
    kwonly = {p.arg for p in a.kwonlyargs}
    for k in kws:
        if k not in by_name and k not in kwonly and a.kwarg is None:
            return False
    n_default = len(a.defaults)
    required = params[: len(params) - n_default] if n_default else params
    for p in required[npos:]:
        if p.arg not in kws:
            return False
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        if d is None and p.arg not in kws:
            return False
    return True


class Checker:
    def __init__(self, root):
        self.root = Path(root)
        self._stubs = {}
        self.problems = []
        self.checked = set()  # "module.Class.member" / "module.name" that were checked

    def stub(self, module):
        if module not in self._stubs:
            tree = None
            for rel in (f"{module}.pyi", f"{module}/__init__.pyi", f"stdlib/{module}.pyi",
                        f"stdlib/{module}/__init__.pyi"):
                p = self.root / rel
                if p.exists():
                    tree = ast.parse(p.read_text(encoding="utf-8"))
                    break
            self._stubs[module] = Stub(tree) if tree else None
        return self._stubs[module]

    # ---- types: ("stub", module, ClassDef) | ("proj", ClassDef)
    def check(self, sources):
        """sources: {module name: source text}."""
        trees = {name: ast.parse(text) for name, text in sources.items()}
        self.modules = {}  # per file: local name -> imported module name
        self.classes = {}  # project classes by (module, name)
        for name, tree in trees.items():
            imports = {}
            for node in tree.body:
                if isinstance(node, ast.Import):
                    for a in node.names:
                        imports[a.asname or a.name] = a.name
                elif isinstance(node, ast.ClassDef):
                    self.classes[(name, node.name)] = node
            self.modules[name] = imports
        self.attrs = {}  # (module, class name) -> {attr: type}
        # Two passes: attribute types found in the first are used by the second.
        for report in (False, True):
            self.report = report
            for name, tree in trees.items():
                self._module(name, tree)
        return self.problems

    def _module(self, mod, tree):
        self.mod = mod
        top = []
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                for fn in node.body:
                    if isinstance(fn, ast.FunctionDef):
                        self._body(fn.body, node)
            elif isinstance(node, ast.FunctionDef):
                self._body(node.body, None)
            else:
                top.append(node)
        self._body(top, None)

    def _body(self, body, cls):
        self.cls = cls
        self.locals = {}
        self.aliases = {}
        nodes = [n for stmt in body for n in ast.walk(stmt)]
        # Names first (each keeps one type in this code), then their uses.
        for node in nodes:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                self._assign(node.targets[0], node.value)
        for node in nodes:
            if isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Attribute):
                self._attribute(node)

    def _assign(self, target, value):
        if isinstance(target, ast.Name):
            t = self._stub_class(value)
            if t:
                self.aliases[target.id] = t  # Pin = machine.Pin
                return
            t = self.type_of(value)
            if t:
                self.locals[target.id] = t
        elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
              and target.value.id == "self" and self.cls is not None):
            t = self.type_of(value)
            if t:
                self.attrs.setdefault((self.mod, self.cls.name), {})[target.attr] = t

    def _module_of(self, expr):
        if isinstance(expr, ast.Name):
            return self.modules[self.mod].get(expr.id)
        return None

    def _stub_class(self, expr):
        """The stub class that `expr` names (machine.Pin, or an alias of it)."""
        if isinstance(expr, ast.Name) and expr.id in self.aliases:
            return self.aliases[expr.id]
        if isinstance(expr, ast.Attribute):
            m = self._module_of(expr.value)
            stub = self.stub(m) if m else None
            if stub and isinstance(stub.defs.get(expr.attr), ast.ClassDef):
                return ("stub", m, stub.defs[expr.attr])
        return None

    def _proj_class(self, expr):
        if isinstance(expr, ast.Name) and (self.mod, expr.id) in self.classes:
            return (self.mod, expr.id)
        if isinstance(expr, ast.Attribute):
            m = self._module_of(expr.value)
            if m and (m, expr.attr) in self.classes:
                return (m, expr.attr)
        return None

    def type_of(self, expr):
        if isinstance(expr, ast.Call):
            return self._stub_class(expr.func)
        if isinstance(expr, ast.Name):
            return self.locals.get(expr.id)
        if (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name)
                and expr.value.id == "self" and self.cls is not None):
            return self.attrs.get((self.mod, self.cls.name), {}).get(expr.attr)
        return None

    def _problem(self, node, text):
        if self.report:
            self.problems.append(f"{self.mod}.py:{node.lineno}: {text}")

    def _attribute(self, node):
        m = self._module_of(node.value)
        stub = self.stub(m) if m else None
        if stub is not None:
            self._mark(f"{m}.{node.attr}")
            if node.attr not in stub.defs:
                self._problem(node, f"{m}.{node.attr} is not in the {m} stubs")
            return
        # Pin.IN on a class; uart.write on an object, called or not.
        t = self._stub_class(node.value) or self.type_of(node.value)
        if t:
            self._member(node, t, node.attr)

    def _member(self, node, t, name):
        _, m, cls = t
        self._mark(f"{m}.{cls.name}.{name}")
        members = class_members(cls)
        if name not in members:
            self._problem(node, f"{m}.{cls.name} has no {name!r} in the stubs")
        return members.get(name)

    def _mark(self, what):
        if self.report:
            self.checked.add(what)

    def _call(self, node):
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return
        npos = len(node.args)
        kws = {k.arg for k in node.keywords}
        func = node.func
        what = None
        t = self._stub_class(func)
        pc = None if t else self._proj_class(func)
        if t:  # a constructor
            what, fns, bound = f"{t[1]}.{t[2].name}()", class_members(t[2]).get("__init__"), True
            self._mark(what)
        elif pc:
            self._constructor_args(node, pc)
            return
        elif isinstance(func, ast.Attribute) and self._module_of(func.value):
            m = self._module_of(func.value)
            stub = self.stub(m)
            if stub is None:
                return
            what, fns, bound = f"{m}.{func.attr}()", stub.defs.get(func.attr), False
        elif isinstance(func, ast.Attribute) and self.type_of(func.value):
            _, m, cls = self.type_of(func.value)  # a method; its existence is checked in _attribute
            what, fns, bound = f"{m}.{cls.name}.{func.attr}()", class_members(cls).get(func.attr), True
        elif self.type_of(func):
            _, m, cls = self.type_of(func)  # calling an object
            what, fns, bound = f"{m}.{cls.name}.__call__()", self._member(node, self.type_of(func), "__call__"), True
        if what and isinstance(fns, list) and not any(accepts(f, npos, kws, bound) for f in fns):
            self._problem(node, f"{what} takes no such arguments: {npos} positional, keywords {sorted(kws)}")

    def _constructor_args(self, node, pc):
        """Give the project class's attributes the types of the arguments."""
        cls = self.classes[pc]
        init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if init is None:
            return
        params = [p.arg for p in init.args.args[1:]]
        given = dict(zip(params, node.args))
        given.update({k.arg: k.value for k in node.keywords})
        types = {p: self.type_of(e) for p, e in given.items()}
        for stmt in ast.walk(init):
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Attribute)
                    and isinstance(stmt.targets[0].value, ast.Name) and stmt.targets[0].value.id == "self"
                    and isinstance(stmt.value, ast.Name) and types.get(stmt.value.id)):
                self.attrs.setdefault(pc, {})[stmt.targets[0].attr] = types[stmt.value.id]
