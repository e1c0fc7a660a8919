"""No module outside ``limelight._sdk`` reaches a private name of opentelemetry,
prometheus_client or pluggy.

Every ``.py`` file under ``core/src``, ``hookspecs/src``, ``plugins/*/src`` and
``demo/src`` is parsed (``ast``; the scanned code is never imported) and
checked for:

1. an import of a private module or name of those libraries: a dotted path
   with a component starting with ``_`` (``opentelemetry.util._once``) or an
   imported name starting with ``_`` (``from opentelemetry.context import
   _RUNTIME_CONTEXT``);
2. an attribute starting with ``_`` read or written (also through
   ``getattr``/``setattr``/``hasattr``/``delattr`` with a literal name) on a
   value known to come from those libraries: a chain of attributes, calls and
   subscripts rooted at an imported name (``otel_metrics._internal``,
   ``trace._TRACER_PROVIDER``), a local name assigned from one (``for``, ``with
   ... as`` and annotated assignments included), a parameter annotated with one
   of their types or with a class of the module deriving from one;
3. on ``self``/``cls`` of a class deriving from one of their classes, a private
   name that class's library ancestors define or use (found in their sources,
   through the MRO): ``self._attributes`` in a subclass of the SDK span, not a
   new attribute of ours such as ``self._keeper``;
4. on any other value, a private name the libraries define (parsed from the
   installed sources: ``self._x`` assignments, private functions and classes,
   class and module level ``_x`` names, ``__slots__``) that is either specific
   (two words or more, ``_restricted_metric``, ``_on_ending``, and used by none
   of our classes) or defined by a library module this module imports
   (``child._value`` in a module importing prometheus_client). What one of our
   objects holds (``self._keeper._add``) is left alone;
5. ``tuple.__new__``/``object.__new__`` called outside the room (how a
   ``SpanContext`` or an SDK ``Span`` is made without its constructor).

Its reach is static, and stops where the values' types cannot be seen: a
one-word private name (``_value``, ``_queue``) read on an unannotated value
in a module that imports none of the libraries defining it, a library value
kept on one of our objects and read through it, a position read of a
``SpanContext`` (``ctx[3]``) or a write to a public but final attribute
(pluggy's ``HookImpl.function``) are not seen. Those are what
``limelight._sdk`` lists and ``test_sdk.py`` pins. A one-word private name of
another library (a client's ``_conn``) is not these libraries' business.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("opentelemetry", "prometheus_client", "pluggy")
ROOM = ROOT / "core" / "src" / "limelight" / "_sdk"


def _sources() -> list[Path]:
    roots = [ROOT / "core" / "src", ROOT / "hookspecs" / "src", ROOT / "demo" / "src"]
    roots += sorted((ROOT / "plugins").glob("*/src"))
    return sorted(
        path
        for root in roots
        for path in root.rglob("*.py")
        if ROOM not in path.parents and "__pycache__" not in path.parts
    )


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _library_module(dotted: str) -> bool:
    return dotted.split(".", 1)[0] in LIBRARIES


def _library_roots() -> list[Path]:
    found: list[Path] = []
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found.extend(Path(p) for p in spec.submodule_search_locations)
    return found


@functools.cache
def library_private_names() -> frozenset[str]:
    """Every private attribute name the installed libraries define."""
    names: set[str] = set()
    for root in _library_roots():
        for path in root.rglob("*.py"):
            names.update(_file_private_names(path))
    return frozenset(names)


@functools.cache
def module_private_names(module: str) -> frozenset[str]:
    """The private names a library module (a package: all its modules) defines."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return frozenset()
    if spec is None:
        return frozenset()
    paths: list[Path] = []
    if spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            paths.extend(Path(location).rglob("*.py"))
    elif spec.origin and spec.origin.endswith(".py"):
        paths.append(Path(spec.origin))
    return frozenset(name for path in paths for name in _file_private_names(path))


@functools.cache
def _file_private_names(path: Path) -> frozenset[str]:
    """The private names one library source file defines: ``self._x`` (any
    attribute) assignments, private functions and classes, class and module level
    ``_x`` names, ``__slots__`` entries."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):  # pragma: no cover - vendored oddities
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if _private(node.attr):
                names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(
            node.name
        ):
            names.add(node.name)
        if isinstance(node, (ast.Module, ast.ClassDef)):
            for item in node.body:
                for target in _assigned(item):
                    if _private(target):
                        names.add(target)
                    if target == "__slots__":
                        names.update(_slot_names(item))
    return frozenset(names)


@functools.cache
def _class_private_names(cls: type) -> frozenset[str]:
    """The private names the library classes in *cls*'s MRO define or use on ``self``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".", 1)[0] not in LIBRARIES:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # pragma: no cover - built-in or generated
            names.update(library_private_names())
            continue
        names.update(n for n in vars(klass) if _private(n))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
                and _private(node.attr)
            ):
                names.add(node.attr)
    return frozenset(names)


@functools.cache
def own_private_names() -> frozenset[str]:
    """The private attribute names limelight's own classes define (``self._x = ...``
    and ``__slots__`` in a class with no library base): names in common use."""
    names: set[str] = set()
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in ast.walk(node):
                    if (
                        isinstance(item, ast.Attribute)
                        and isinstance(item.ctx, ast.Store)
                        and isinstance(item.value, ast.Name)
                        and item.value.id == "self"
                        and _private(item.attr)
                    ):
                        names.add(item.attr)
                for stmt in node.body:
                    if "__slots__" in _assigned(stmt):
                        names.update(_slot_names(stmt))
    return frozenset(names)


@functools.cache
def telltale_names() -> frozenset[str]:
    """Private names that betray a library's internals on any value: those the
    libraries define that have two words or more (``_restricted_metric``,
    ``_on_ending``, ``_real_meter_provider``) and that no class of ours uses.
    A one-word name (``_value``, ``_queue``, ``_lock``) is common to many
    libraries and flagged only on a value known to come from these ones."""
    return frozenset(
        name for name in library_private_names() - own_private_names() if "_" in name.strip("_")
    )


def _assigned(node: ast.stmt) -> Iterator[str]:
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Name):
                yield target.id
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        yield node.target.id


def _slot_names(node: ast.stmt) -> Iterator[str]:
    value = getattr(node, "value", None)
    for item in ast.walk(value) if value is not None else ():
        if isinstance(item, ast.Constant) and isinstance(item.value, str) and _private(item.value):
            yield item.value


def _root(node: ast.expr) -> ast.expr:
    """The start of a chain of attributes, calls and subscripts."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node


def _annotation_names(node: ast.expr | None) -> set[str]:
    """Every name an annotation mentions (``Sequence[SpanProcessor] | None``)."""
    if node is None:
        return set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class _Scan(ast.NodeVisitor):
    """One module's reaches; see the module documentation for what it sees."""

    def __init__(self, path: Path, tree: ast.Module) -> None:
        self.path = path
        self.found: list[str] = []
        # names bound to a library module or to something imported from one
        self.library_names: set[str] = set()
        # name -> (module, attribute or None), to resolve a library base class
        self.bound: dict[str, tuple[str, str | None]] = {}
        # classes of this module deriving from a library class (directly or not)
        self.library_classes: set[str] = set()
        # per enclosing class: the private names of its library ancestors (None: ours)
        self.classes: list[frozenset[str] | None] = []
        # per enclosing function: the local names holding library values
        self.scopes: list[set[str]] = [set()]
        for node in ast.walk(tree):  # names bound by imports anywhere in the module
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _library_module(alias.name):
                        if alias.asname:
                            self.bound[alias.asname] = (alias.name, None)
                        else:
                            root = alias.name.split(".", 1)[0]
                            self.bound[root] = (root, None)
                        self.library_names.add(alias.asname or alias.name.split(".", 1)[0])
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module
                and not node.level
                and _library_module(node.module)
            ):
                for a in node.names:
                    self.library_names.add(a.asname or a.name)
                    self.bound[a.asname or a.name] = (node.module, a.name)
        # the private names of the library modules this module imports
        self.imported_private: set[str] = set()
        for module in self._imported_modules(tree):
            self.imported_private.update(module_private_names(module))
        for node in tree.body:  # in order, so a subclass of a subclass is found too
            if isinstance(node, ast.ClassDef) and any(self._library_type(b) for b in node.bases):
                self.library_classes.add(node.name)

    @staticmethod
    def _imported_modules(tree: ast.Module) -> set[str]:
        modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(a.name for a in node.names if _library_module(a.name))
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module
                and not node.level
                and _library_module(node.module)
            ):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    try:
                        found = importlib.util.find_spec(candidate) is not None
                    except (ImportError, ValueError):
                        found = False
                    modules.add(candidate if found else node.module)
        return modules

    def report(self, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 0)
        self.found.append(f"{self.path.relative_to(ROOT)}:{line}: {what}")

    def _library_type(self, node: ast.expr) -> bool:
        root = _root(node)
        return isinstance(root, ast.Name) and (
            root.id in self.library_names or root.id in self.library_classes
        )

    def _imported(self, node: ast.expr) -> bool:
        """Rooted at a library module or at a name imported from one."""
        root = _root(node)
        return isinstance(root, ast.Name) and root.id in self.library_names

    def _library_value(self, node: ast.expr) -> bool:
        """Known to be (or to come from) a library object: rooted at an import, or at
        a local name assigned from one, annotated with a library type, or ``self``
        of a class deriving from a library class."""
        root = _root(node)
        if not isinstance(root, ast.Name):
            return False
        if root.id in self.library_names or any(root.id in scope for scope in self.scopes):
            return True
        if root.id not in ("self", "cls") or not self.classes or self.classes[-1] is None:
            return False
        # self of a library subclass: itself, or what it holds under a name its
        # library ancestors use (not an attribute of ours, such as self._keeper)
        first = node
        while isinstance(first, (ast.Attribute, ast.Call, ast.Subscript)):
            inner = first.func if isinstance(first, ast.Call) else first.value
            if isinstance(first, ast.Attribute) and inner is root:
                return first.attr in self.classes[-1]
            first = inner
        return True

    # 1: imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _library_module(alias.name) and any(_private(p) for p in alias.name.split(".")):
                self.report(node, f"imports the private module {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or not _library_module(module):
            return
        if any(_private(p) for p in module.split(".")):
            self.report(node, f"imports from the private module {module}")
        for alias in node.names:
            if _private(alias.name):
                self.report(node, f"imports the private name {module}.{alias.name}")

    # own classes, library subclasses
    def _resolve(self, base: ast.expr) -> object:
        """The library object *base* names (``sdk_trace.Span``), or None."""
        parts: list[str] = []
        while isinstance(base, ast.Attribute):
            parts.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name) or base.id not in self.bound:
            return None
        module, attr = self.bound[base.id]
        try:
            value: object = importlib.import_module(module)
            if attr is not None:
                try:
                    value = getattr(value, attr)
                except AttributeError:
                    value = importlib.import_module(f"{module}.{attr}")
            for part in parts:
                value = getattr(value, part)
        except (ImportError, AttributeError):
            return None
        return value

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        names: set[str] | None = None
        for base in node.bases:
            if not self._library_type(base):
                continue
            names = names or set()
            resolved = self._resolve(base)
            if isinstance(resolved, type):
                names.update(_class_private_names(resolved))
            else:  # a subclass of ours, or not importable here: every private name
                names.update(library_private_names())
        self.classes.append(None if names is None else frozenset(names))
        self.generic_visit(node)
        self.classes.pop()

    # library values flowing into local names
    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        scope: set[str] = set()
        arguments = node.args
        for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
            mentioned = _annotation_names(arg.annotation)
            if mentioned & (self.library_names | self.library_classes):
                scope.add(arg.arg)
        self.scopes.append(scope)
        self.generic_visit(node)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def _bind(self, target: ast.expr, library: bool) -> None:
        for name in ast.walk(target):
            if isinstance(name, ast.Name) and library:
                self.scopes[-1].add(name.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind(target, self._library_value(node.value))
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        mentioned = _annotation_names(node.annotation)
        library = bool(mentioned & (self.library_names | self.library_classes)) or (
            node.value is not None and self._library_value(node.value)
        )
        self._bind(node.target, library)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._bind(node.target, self._library_value(node.iter))
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._bind(node.optional_vars, self._library_value(node.context_expr))
        self.generic_visit(node)

    def _reached(self, obj: ast.expr, name: str) -> str | None:
        """Why reaching *name* on *obj* is a private reach of a library, or None."""
        if self._imported(obj):
            return f"reaches {name} of a library object"
        if isinstance(obj, ast.Name) and obj.id in ("self", "cls") and self.classes:
            ancestors = self.classes[-1]
            if ancestors is None:
                return None  # an attribute of one of our own objects
            if name in ancestors:
                return f"reaches {name}, which its library base class uses (on {obj.id})"
            return None  # a new attribute of ours on a library subclass
        if self._library_value(obj):
            return f"reaches {name} of a library object (on {ast.unparse(obj)})"
        if self._held_by_us(obj):
            return None
        if name in telltale_names() or name in self.imported_private:
            return (
                f"reaches {name}, a private name of {'/'.join(LIBRARIES)} (on {ast.unparse(obj)})"
            )
        return None

    def _held_by_us(self, obj: ast.expr) -> bool:
        """What one of our objects holds under a name of ours (``self._keeper``):
        its attributes are its own business."""
        root = _root(obj)
        return (
            isinstance(root, ast.Name)
            and root.id in ("self", "cls")
            and bool(self.classes)
            and not self._library_value(obj)
        )

    # 2 and 4: attributes
    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _private(node.attr):
            why = self._reached(node.value, node.attr)
            if why is not None:
                self.report(node, why)
        self.generic_visit(node)

    # 3 and 5: calls
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Name)
            and func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            name = node.args[1].value
            why = self._reached(node.args[0], name)
            if why is not None:
                self.report(node, f"{func.id}(…, {name!r}): {why}")
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "__new__"
            and isinstance(func.value, ast.Name)
            and func.value.id in ("tuple", "object")
        ):
            self.report(node, f"makes an object with {func.value.id}.__new__")
        self.generic_visit(node)


def scan(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    visitor = _Scan(path, tree)
    visitor.visit(tree)
    return visitor.found


class TestPrivateNames:
    """Private names of other libraries are reached only from limelight._sdk."""

    def test_the_scanned_tree_is_the_whole_tree(self) -> None:
        scanned = {p.relative_to(ROOT).parts[:2] for p in _sources()}
        assert ("core", "src") in scanned
        assert ("hookspecs", "src") in scanned
        assert any(parts[0] == "plugins" for parts in scanned)

    def test_the_library_private_names_are_found(self) -> None:
        names = library_private_names()
        # one known private name of each library, so an empty harvest cannot pass
        assert {"_RUNTIME_CONTEXT", "_value", "_hookimpls"} <= names

    def test_no_module_outside_the_room_reaches_a_private_name(self) -> None:
        found = [hit for path in _sources() for hit in scan(path)]
        assert [] == found, (
            "private names of opentelemetry/prometheus_client/pluggy outside "
            "limelight._sdk (move the use into the room, list it in its docstring, "
            "pin it in test_sdk.py):\n  " + "\n  ".join(found)
        )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from opentelemetry.util._once import Once", "private module"),
        ("from opentelemetry.context import _RUNTIME_CONTEXT", "private name"),
        ("import opentelemetry.metrics._internal", "private module"),
        ("from opentelemetry import metrics\nmetrics._internal._ProxyMeterProvider", "reaches"),
        ("from opentelemetry import baggage\ngetattr(baggage, '_BAGGAGE_KEY', None)", "getattr"),
        (
            "import prometheus_client\n"
            "def f(child: prometheus_client.Counter):\n    return child._value.get()",
            "of a library object",
        ),
        (
            "import prometheus_client\n"
            "def f():\n    child = prometheus_client.Counter('c', 'c')\n"
            "    for cell in child._buckets:\n        cell.get()",
            "of a library object",
        ),
        ("def f(metric):\n    return metric._restricted_metric(set())", "a private name of"),
        (
            "import prometheus_client\ndef f(child):\n    return child._value.get()",
            "a private name",
        ),
        (
            "from opentelemetry.sdk import trace\n"
            "class S(trace.Span):\n    def f(self):\n        self._attributes = {}",
            "its library base class uses",
        ),
        (
            "from opentelemetry.sdk import trace\n"
            "class S(trace.Span):\n    def f(self):\n        return self._resource._attributes",
            "of a library object",
        ),
        ("def f(c):\n    return tuple.__new__(c, ())", "tuple.__new__"),
    ],
)
def test_the_scan_sees(source: str, expected: str, tmp_path: Path) -> None:
    """Each kind of reach the scan claims to see is seen (so a clean tree means something)."""
    path = ROOT / "core" / "src" / "probe.py"
    tree = ast.parse(source)
    visitor = _Scan(path, tree)
    visitor.visit(tree)
    assert any(expected in hit for hit in visitor.found), visitor.found


@pytest.mark.parametrize(
    "source",
    [
        "class Own:\n    def f(self):\n        self._value = 1\n        return self._lock\n",
        # an attribute of ours on a library subclass, and what it holds
        "from opentelemetry.sdk.trace import SpanProcessor\n"
        "class Keep(SpanProcessor):\n    def on_end(self, span):\n"
        "        self._keeper._add(span)\n",
        # a one-word private name of another library, on a value of that library
        "def wrap(self):\n    sub = getattr(self, '_sub', self)\n"
        "    return getattr(sub, '_queue', '')\n",
    ],
)
def test_what_is_not_a_reach_of_these_libraries_is_not_flagged(source: str) -> None:
    tree = ast.parse(source)
    visitor = _Scan(ROOT / "core" / "src" / "probe.py", tree)
    visitor.visit(tree)
    assert [] == visitor.found
