"""HTTP actions: `http_action` handlers routed by `functions/http.py`'s `http = HttpRouter()`.

A handler takes `(ctx, request)`, a Starlette `Request`, and returns a
Starlette `Response`; `ctx` is an action context. Handlers should be
`async def` to read the body (`await request.json()`): Starlette's body API
is async. Routes match an exact `path` first, then the longest `path_prefix`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.errors import PlatformError

__all__ = ["HttpActionDefinition", "HttpRouter", "RouteError", "http_action"]

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


class RouteError(PlatformError):
    code = "INVALID_ROUTE"


@dataclass(frozen=True)
class HttpActionDefinition:
    handler: Callable[..., Any]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)


def http_action(handler: Callable[..., Any] | HttpActionDefinition) -> HttpActionDefinition:
    if isinstance(handler, HttpActionDefinition):
        return handler
    if not callable(handler):
        raise TypeError("@http_action decorates a function (ctx, request)")
    return HttpActionDefinition(handler)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    prefix: bool
    action: HttpActionDefinition


class HttpRouter:
    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Route] = {}
        self._prefixes: list[Route] = []

    def route(
        self,
        *,
        method: str,
        handler: Callable[..., Any] | HttpActionDefinition,
        path: str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        method = method.upper()
        if method not in METHODS:
            raise RouteError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if (path is None) == (path_prefix is None):
            raise RouteError("give exactly one of path= or path_prefix=")
        where = path if path is not None else path_prefix
        assert where is not None
        if not where.startswith("/"):
            raise RouteError(f"route paths start with '/': {where!r}")
        action = http_action(handler)
        if path is not None:
            if (method, path) in self._exact:
                raise RouteError(f"route {method} {path} is defined twice")
            self._exact[(method, path)] = Route(method, path, False, action)
            return
        assert path_prefix is not None
        if not path_prefix.endswith("/"):
            raise RouteError(f"path_prefix must end with '/': {path_prefix!r}")
        if any(r.method == method and r.path == path_prefix for r in self._prefixes):
            raise RouteError(f"route {method} {path_prefix}* is defined twice")
        self._prefixes.append(Route(method, path_prefix, True, action))
        self._prefixes.sort(key=lambda r: len(r.path), reverse=True)

    def lookup(self, method: str, path: str) -> Route | None:
        route = self._exact.get((method.upper(), path))
        if route is not None:
            return route
        for r in self._prefixes:
            if r.method == method.upper() and path.startswith(r.path):
                return r
        return None

    def methods_for(self, path: str) -> list[str]:
        """The methods some route accepts at `path` (for 405 answers)."""
        found = {m for (m, p) in self._exact if p == path}
        found |= {r.method for r in self._prefixes if path.startswith(r.path)}
        return sorted(found)

    @property
    def routes(self) -> list[Route]:
        return [*self._exact.values(), *self._prefixes]
