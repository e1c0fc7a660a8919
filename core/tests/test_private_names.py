"""No module outside ``limelight._sdk`` reaches a private name of opentelemetry,
prometheus_client or pluggy.

Every ``.py`` file under ``core/src``, ``hookspecs/src``, ``plugins/*/src`` and
``demo/src`` is parsed (``ast``, nothing imported) and checked for:

1. an import of a private module or name of those libraries: a dotted path
   with a component starting with ``_`` (``opentelemetry.util._once``) or an
   imported name starting with ``_`` (``from opentelemetry.context import
   _RUNTIME_CONTEXT``);
2. an attribute starting with ``_`` read or written through a name bound to
   one of those libraries or to something imported from them
   (``otel_metrics._internal``, ``trace._TRACER_PROVIDER``,
   ``SpanContext._fields``), however long the chain of attributes, calls and
   subscripts in between;
3. ``getattr``/``setattr``/``hasattr``/``delattr`` with a literal private name,
   where the object is such a name or the literal is a private attribute name
   those libraries define;
4. ``x._name`` on any other value where ``_name`` is a private attribute name
   the installed libraries define (found by parsing their sources: ``self._x``
   assignments, class and module level ``_x`` names, ``__slots__`` entries);
   on ``self``/``cls``, only in a class deriving from one of their classes and
   only for a name that class's library ancestors use (an object's own new
   attribute, or any attribute of a class of ours, is its own business);
5. ``tuple.__new__``/``object.__new__`` called outside the room (how a
   ``SpanContext`` or an SDK ``Span`` is made without its constructor).

Its reach is static: a library value that travels through an untyped container
or a function and is then read by a private name no library defines, a
position read of a ``SpanContext`` (``ctx[3]``) or a write to a public but
final attribute (pluggy's ``HookImpl.function``) is not seen. Those are the
assumptions ``limelight._sdk`` lists and ``test_sdk.py`` pins.
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
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):  # pragma: no cover - vendored oddities
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    if _private(node.attr):
                        names.add(node.attr)
                elif isinstance(
                    node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
                ) and _private(node.name):
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


class _Scan(ast.NodeVisitor):
    def __init__(self, path: Path, tree: ast.Module) -> None:
        self.path = path
        self.found: list[str] = []
        self.library_names: set[str] = set()
        # name -> (module, attribute or None), to resolve a library base class
        self.bound: dict[str, tuple[str, str | None]] = {}
        # per enclosing class: the private names of its library ancestors (empty: ours)
        self.classes: list[frozenset[str]] = []
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

    def report(self, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 0)
        self.found.append(f"{self.path.relative_to(ROOT)}:{line}: {what}")

    def _library_value(self, node: ast.expr) -> bool:
        root = _root(node)
        return isinstance(root, ast.Name) and root.id in self.library_names

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
        names: set[str] = set()
        for base in node.bases:
            if self._library_value(base):
                resolved = self._resolve(base)
                if isinstance(resolved, type):
                    names.update(_class_private_names(resolved))
                else:  # not importable here: every private name of the libraries
                    names.update(library_private_names())
        self.classes.append(frozenset(names))
        self.generic_visit(node)
        self.classes.pop()

    def _own(self, node: ast.expr, attr: str) -> bool:
        """An attribute of ``self``/``cls`` that no library ancestor of the class uses."""
        return (
            isinstance(node, ast.Name)
            and node.id in ("self", "cls")
            and bool(self.classes)
            and attr not in self.classes[-1]
        )

    # 2 and 4: attributes
    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _private(node.attr):
            if self._library_value(node.value):
                self.report(node, f"reaches {node.attr} of a library object")
            elif node.attr in library_private_names() and not self._own(node.value, node.attr):
                self.report(
                    node,
                    f"reaches {node.attr}, a private attribute name of "
                    f"{'/'.join(LIBRARIES)} (on {ast.unparse(node.value)})",
                )
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
            if self._library_value(node.args[0]) or name in library_private_names():
                self.report(node, f"{func.id}(…, {name!r}) on a library object")
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
        ("def f(child):\n    return child._value.get()", "private attribute name"),
        (
            "from opentelemetry.sdk import trace\n"
            "class S(trace.Span):\n    def f(self):\n        self._attributes = {}",
            "private attribute name",
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


def test_an_objects_own_private_attributes_are_not_flagged() -> None:
    source = "class Own:\n    def f(self):\n        self._value = 1\n        return self._lock\n"
    tree = ast.parse(source)
    visitor = _Scan(ROOT / "core" / "src" / "probe.py", tree)
    visitor.visit(tree)
    assert [] == visitor.found
