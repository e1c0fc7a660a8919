"""Route templates of Starlette and FastAPI apps, resolved after routing.

The router leaves the matched endpoint in ``scope["endpoint"]``. An index built
once per router maps every endpoint to the full template of the route serving
it, prefixes of mounts, hosts and included routers applied
(``/api/v1/items/{item_id}``); resolving a request is then one dictionary
lookup. An endpoint served by several routes (one router included twice, one
function behind two paths) is told apart by matching only those routes again;
an endpoint the index cannot see (an app hidden behind a middleware inside a
mount) by walking the routes the way the router did.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["StarletteRoutes"]

_MAX_DEPTH = 16
_MEMO_SIZE = 1024


def _fastapi_contexts() -> Any:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return None
    return iter_route_contexts


def _route_context_class() -> Any:
    try:
        from fastapi.routing import RouteContext
    except ImportError:
        return None
    return RouteContext


class _Leaf:
    __slots__ = ("chain", "template")

    def __init__(self, template: str | None, chain: tuple[Any, ...]) -> None:
        self.template = template
        self.chain = chain


class _Walker:
    """Starlette and FastAPI route classes, imported once."""

    def __init__(self) -> None:
        from starlette.routing import Host, Match, Mount

        self.Mount = Mount
        self.Host = Host
        self.FULL = Match.FULL
        self.PARTIAL = Match.PARTIAL
        self.NONE = Match.NONE
        self.contexts = _fastapi_contexts()
        self.context_class = _route_context_class()

    def flatten(self, routes: Iterable[Any]) -> list[Any]:
        """Routes as the router matches them (FastAPI's included routers expanded)."""
        if self.contexts is not None:
            try:
                return list(self.contexts(routes))
            except Exception:  # an unexpected route type: match the plain list
                pass
        return list(routes)

    def original(self, route: Any) -> Any:
        cls = self.context_class
        if cls is not None and isinstance(route, cls):
            return route.route
        return route

    def kind(self, route: Any) -> str:
        original = self.original(route)
        if isinstance(original, self.Mount):
            return "mount"
        if isinstance(original, self.Host):
            return "host"
        return "route"

    @staticmethod
    def children(route: Any) -> Sequence[Any]:
        try:
            return getattr(route, "routes", None) or ()
        except Exception:
            return ()

    def match(self, route: Any, scope: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        try:
            return route.matches(scope)  # type: ignore[no-any-return]
        except Exception:
            return self.NONE, {}


class _Index:
    """Every endpoint reachable from one router, with the template serving it."""

    def __init__(self, router: Any, walker: _Walker) -> None:
        self.router = router
        self.signature = _signature(router)
        self.leaves: dict[int, list[_Leaf]] = {}
        self._endpoints: list[Any] = []  # keeps every id() in `leaves` alive
        self._walker = walker
        self._walk(_Walker.children(router), "", (), 0)

    def _add(self, endpoint: Any, template: str | None, chain: tuple[Any, ...]) -> None:
        if endpoint is None:
            return
        self._endpoints.append(endpoint)
        self.leaves.setdefault(id(endpoint), []).append(_Leaf(template, chain))

    def _walk(self, routes: Iterable[Any], prefix: str, chain: tuple[Any, ...], depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        walker = self._walker
        for route in walker.flatten(routes):
            here = (*chain, route)
            kind = walker.kind(route)
            if kind == "route":
                template = getattr(route, "path_format", None)
                if isinstance(template, str):
                    self._add(getattr(route, "endpoint", None), prefix + template, here)
                continue
            inner = prefix + (getattr(route, "path", "") or "") if kind == "mount" else prefix
            children = walker.children(route)
            app = getattr(route, "app", None)
            if children:
                # the mounted router matched nothing: the request is unmatched
                self._add(app, None, here)
                self._walk(children, inner, here, depth + 1)
            else:
                self._add(app, inner + "/{path}", here)

    def pick(self, leaves: list[_Leaf], scope: Mapping[str, Any], root_path: str) -> str | None:
        """The template among *leaves* whose routes match the request."""
        walker = self._walker
        partial: _Leaf | None = None
        for leaf in leaves:
            state = _matching_scope(scope, root_path)
            outcome = walker.FULL
            for route in leaf.chain:
                match, child = walker.match(route, state)
                if match == walker.NONE:
                    outcome = match
                    break
                if match == walker.PARTIAL:
                    outcome = match
                state.update(child)
            if outcome == walker.FULL:
                return leaf.template
            if outcome == walker.PARTIAL and partial is None:
                partial = leaf
        if partial is not None:
            return partial.template
        return walk_match(walker, _Walker.children(self.router), scope, root_path)


def _signature(router: Any) -> tuple[int, int]:
    routes = _Walker.children(router)
    return (id(routes), len(routes))


def _matching_scope(scope: Mapping[str, Any], root_path: str) -> dict[str, Any]:
    return {
        "type": scope["type"],
        "path": scope["path"],
        "root_path": root_path,
        "method": scope.get("method", "GET"),
        "headers": scope.get("headers", ()),
        "path_params": {},
    }


def walk_match(
    walker: _Walker, routes: Sequence[Any], scope: Mapping[str, Any], root_path: str
) -> str | None:
    """Match the request against *routes* the way the router does; its template."""
    state = _matching_scope(scope, root_path)
    prefix = ""
    for _depth in range(_MAX_DEPTH):
        chosen: tuple[Any, dict[str, Any]] | None = None
        partial: tuple[Any, dict[str, Any]] | None = None
        for route in walker.flatten(routes):
            match, child = walker.match(route, state)
            if match == walker.FULL:
                chosen = (route, child)
                break
            if match == walker.PARTIAL and partial is None:
                partial = (route, child)
        chosen = chosen or partial
        if chosen is None:
            return None
        route, child = chosen
        state.update(child)
        kind = walker.kind(route)
        if kind == "route":
            template = getattr(route, "path_format", None)
            return prefix + template if isinstance(template, str) else None
        if kind == "mount":
            prefix += getattr(route, "path", "") or ""
        routes = walker.children(route)
        if not routes:
            return prefix + "/{path}"
    return None


class StarletteRoutes:
    """Resolves the route template of a request routed by Starlette or FastAPI."""

    def __init__(self) -> None:
        self._walker: _Walker | None = None
        self._index: _Index | None = None
        self._lock = threading.Lock()
        self._memo: dict[tuple[int, str], tuple[Any, str | None]] = {}

    def _rebuild(self, router: Any) -> _Index:
        with self._lock:
            index = self._index
            if (
                index is not None
                and index.router is router
                and index.signature == _signature(router)
            ):
                return index
            if self._walker is None:
                self._walker = _Walker()
            index = _Index(router, self._walker)
            self._index = index
            self._memo = {}
            return index

    def __call__(self, scope: Mapping[str, Any], root_path: str) -> str | None:
        """The template of the route that served *scope*; ``None`` when none matched.

        :param root_path: the ``root_path`` the request arrived with (mounts
            change it while routing).
        """
        router = scope.get("router")
        endpoint = scope.get("endpoint")
        if router is None or endpoint is None:
            return None
        index = self._index
        if index is None or index.router is not router:
            index = self._rebuild(router)
        leaves = index.leaves.get(id(endpoint))
        if leaves is None and index.signature != _signature(router):
            index = self._rebuild(router)
            leaves = index.leaves.get(id(endpoint))
        if leaves is not None:
            if len(leaves) == 1:
                return leaves[0].template
            return index.pick(leaves, scope, root_path)
        return self._unindexed(index, endpoint, scope, root_path)

    def _unindexed(
        self, index: _Index, endpoint: Any, scope: Mapping[str, Any], root_path: str
    ) -> str | None:
        key = (id(endpoint), str(scope.get("root_path", "")))
        memo = self._memo
        hit = memo.get(key)
        if hit is not None and hit[0] is endpoint:
            return hit[1]
        assert self._walker is not None
        template = walk_match(self._walker, _Walker.children(index.router), scope, root_path)
        if len(memo) < _MEMO_SIZE:
            memo[key] = (endpoint, template)
        return template
