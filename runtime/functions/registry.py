"""Function definitions and the registry of an app's `functions/` folder.

`@query`, `@mutation`, `@action` and their `internal_` variants turn a
handler `(ctx, args)` into a `FunctionDefinition`; `load_functions(dir)`
imports every module under the folder and names each definition by its
path and export: `functions/chat/messages.py` `send` is `chat/messages:send`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar, overload

from runtime.auth import AuthConfigError, Provider, parse_providers
from runtime.errors import PlatformError
from runtime.values import Validator, as_validator

from . import determinism
from .crons import CronJob, CronJobs
from .http_router import HttpRouter

__all__ = [
    "FunctionDefinition",
    "FunctionRegistry",
    "action",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "load_functions",
    "mutation",
    "normalize_path",
    "query",
]

Kind = Literal["query", "mutation", "action"]
F = TypeVar("F", bound=Callable[..., Any])


class FunctionLoadError(PlatformError):
    code = "FUNCTIONS_INVALID"


@dataclass(frozen=True)
class FunctionDefinition:
    kind: Kind
    handler: Callable[..., Any]
    args: Validator | None
    """None: any object is accepted."""
    returns: Validator | None
    internal: bool

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def __call__(self, ctx: Any, args: dict[str, Any]) -> Any:
        return self.handler(ctx, args)


def _decorator(kind: Kind, internal: bool) -> Any:
    @overload
    def make(fn: F, /) -> FunctionDefinition: ...
    @overload
    def make(
        *, args: Any = None, returns: Any = None
    ) -> Callable[[Callable[..., Any]], FunctionDefinition]: ...

    def make(fn: Any = None, /, *, args: Any = None, returns: Any = None) -> Any:
        args_v = as_validator(args) if args is not None else None
        returns_v = as_validator(returns) if returns is not None else None
        if args_v is not None and args_v.describe() != "object":
            raise TypeError(f"{kind} args must be a dict of validators or v.object(...)")

        def wrap(handler: Callable[..., Any]) -> FunctionDefinition:
            if not callable(handler):
                raise TypeError(f"@{kind} decorates a function (ctx, args)")
            if kind != "action" and inspect.iscoroutinefunction(handler):
                raise TypeError(
                    f"{handler.__name__}: a {kind} handler must be a plain def "
                    "(queries and mutations are synchronous transactions); use an action for async work"
                )
            return FunctionDefinition(kind, handler, args_v, returns_v, internal)

        return wrap(fn) if fn is not None else wrap

    return make


query = _decorator("query", internal=False)
mutation = _decorator("mutation", internal=False)
action = _decorator("action", internal=False)
internal_query = _decorator("query", internal=True)
internal_mutation = _decorator("mutation", internal=True)
internal_action = _decorator("action", internal=True)


def normalize_path(path: str) -> str:
    """`dir/mod.js:fn` -> `dir/mod:fn`; a missing export is `default`."""
    module, _, export = path.partition(":")
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{export or 'default'}"


class FunctionRegistry:
    def __init__(
        self,
        functions: dict[str, FunctionDefinition],
        schema: Any = None,
        http: HttpRouter | None = None,
        root: Path | None = None,
        providers: list[Provider] | None = None,
        crons: list[CronJob] | None = None,
    ) -> None:
        self.functions = functions
        self.schema = schema
        self.http = http
        self.root = root
        """The functions folder (errors show frames in its files only)."""
        self.providers: list[Provider] = providers or []
        """The auth providers of `auth.config.py`, validated (none: no file)."""
        self.crons: list[CronJob] = crons or []
        """The jobs of `crons.py`, each with its function's `path` (checked)."""

    def get(self, path: str) -> FunctionDefinition | None:
        return self.functions.get(normalize_path(path))

    def path_of(self, definition: FunctionDefinition) -> str | None:
        """The name a function object is exported under (the first, if several)."""
        for path, found in self.functions.items():
            if found is definition:
                return path
        return None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.functions))


def _package(name: str, path: Path) -> None:
    """A package module for a folder, so modules under it can import their
    siblings (`from . import _helpers`, `from ._shared import x`)."""
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(path)]
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module


def _location(e: BaseException, root: Path) -> str:
    """Where under `root` an import failed: the innermost frame in the app's files."""
    if isinstance(e, SyntaxError) and e.filename:
        return f"{e.filename}:{e.lineno}"
    where = ""
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename.startswith(str(root)):
            where = f"{frame.filename}:{frame.lineno}"
    return where


def _import(path: Path, name: str, root: Path) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as e:
        where = _location(e, root) or str(path)
        raise FunctionLoadError(f"{where}: {type(e).__name__}: {e}", file=str(path)) from e


AUTH_CONFIG = "auth.config.py"
CRONS_MODULE = "crons"


def _crons_of(module: ModuleType, path: Path) -> CronJobs | None:
    """The module's `crons`, or else its only CronJobs; None: it defines none."""
    named = getattr(module, "crons", None)
    if isinstance(named, CronJobs):
        return named
    found = [v for v in vars(module).values() if isinstance(v, CronJobs)]
    if len(found) == 1:
        return found[0]
    if found or named is not None:
        raise FunctionLoadError(
            f"{path}: define `crons = cron_jobs()` (from runtime import cron_jobs) and "
            "register the jobs on it",
            file=str(path),
        )
    return None


def _resolve_crons(
    crons: CronJobs, functions: dict[str, FunctionDefinition], path: Path
) -> list[CronJob]:
    """Each job with its function's path; the function must be exported
    under functions/ and be a mutation or an action (public or internal)."""
    resolved: list[CronJob] = []
    for job in crons:
        if isinstance(job.fn, FunctionDefinition):
            found = next((p for p, d in functions.items() if d is job.fn), None)
            if found is None:
                raise FunctionLoadError(
                    f"{path}: cron {job.name!r}: its function object is not exported by a "
                    "module under functions/",
                    file=str(path),
                )
            fn_path = found
        else:
            fn_path = normalize_path(job.fn)
        defn = functions.get(fn_path)
        if defn is None:
            raise FunctionLoadError(
                f"{path}: cron {job.name!r}: no function {fn_path!r} under functions/ "
                "(a path is 'module:export', e.g. 'messages:clear')",
                file=str(path),
            )
        if defn.kind not in ("mutation", "action"):
            raise FunctionLoadError(
                f"{path}: cron {job.name!r}: {fn_path} is a {defn.kind}; a cron runs a "
                "mutation or an action",
                file=str(path),
            )
        resolved.append(replace(job, path=fn_path))
    return resolved


def _load_auth_config(path: Path, namespace: str, root: Path) -> list[Provider]:
    """`providers` of `functions/auth.config.py` (Convex's auth.config.ts),
    validated by `parse_providers`. Its dotted name is no importable module
    name, so it is loaded from its file; a missing or invalid `providers`
    refuses the whole load with a message naming the file."""
    name = f"{namespace}._auth_config"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FunctionLoadError(f"{path}: cannot be loaded", file=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        where = _location(e, root) or str(path)
        raise FunctionLoadError(f"{where}: {type(e).__name__}: {e}", file=str(path)) from e
    if not hasattr(module, "providers"):
        raise FunctionLoadError(
            f"{path}: define `providers = [...]` (a list of auth providers; [] for none)",
            file=str(path),
        )
    try:
        return parse_providers(module.providers, str(path))
    except AuthConfigError as e:
        raise FunctionLoadError(e.message, file=str(path)) from e


def load_functions(root: Path | str, *, namespace: str = "_app_functions") -> FunctionRegistry:
    """Import every module under `root` (not starting with `_`; `schema.py`
    gives the schema, `http.py`'s `http` the HTTP routes, `auth.config.py`'s
    `providers` the auth providers, `crons.py`'s `crons` the cron jobs,
    each checked to run an existing mutation or action) and collect its
    function definitions. Calling it again re-imports everything, so it is
    also the reload."""
    determinism.install()  # before the app's `from datetime import datetime`
    root = Path(root).resolve()
    if not root.is_dir():
        raise FunctionLoadError(f"functions folder {root} does not exist")
    for name in [m for m in sys.modules if m == namespace or m.startswith(namespace + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    _package(namespace, root)
    functions: dict[str, FunctionDefinition] = {}
    schema = None
    http: HttpRouter | None = None
    providers: list[Provider] = []
    crons: tuple[CronJobs, Path] | None = None
    for path in sorted(root.rglob("*.py")):
        if path.parent == root and path.name == AUTH_CONFIG:
            providers = _load_auth_config(path, namespace, root)
            continue
        rel = path.relative_to(root).with_suffix("")
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        for depth in range(1, len(rel.parts)):
            package = f"{namespace}.{'.'.join(rel.parts[:depth])}"
            if package not in sys.modules:
                _package(package, root.joinpath(*rel.parts[:depth]))
        module = _import(path, f"{namespace}.{'.'.join(rel.parts)}", root)
        if rel.parts == (CRONS_MODULE,):
            found = _crons_of(module, path)
            if found is not None:
                crons = (found, path)
            continue  # configuration, like schema.py: the functions it imports keep their paths
        if rel.parts == ("schema",):
            schema = getattr(module, "schema", None)
            continue
        if rel.parts == ("http",):
            router = getattr(module, "http", None)
            if router is not None and not isinstance(router, HttpRouter):
                raise FunctionLoadError(f"{path}: `http` must be an HttpRouter()")
            http = router
        module_path = "/".join(rel.parts)
        for export, value in vars(module).items():
            if isinstance(value, FunctionDefinition):
                functions[f"{module_path}:{export}"] = value
    jobs = _resolve_crons(crons[0], functions, crons[1]) if crons is not None else []
    return FunctionRegistry(functions, schema, http, root, providers, jobs)
