"""Function definitions and the registry of an app's `functions/` folder.

`@query`, `@mutation`, `@action` and their `internal_` variants turn a
handler `(ctx, args)` into a `FunctionDefinition`; `load_functions(dir)`
imports every module under the folder and names each definition by its
path and export: `functions/chat/messages.py` `send` is `chat/messages:send`.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar, overload

from runtime.errors import PlatformError
from runtime.values import Validator, as_validator

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
    def __init__(self, functions: dict[str, FunctionDefinition], schema: Any = None) -> None:
        self.functions = functions
        self.schema = schema

    def get(self, path: str) -> FunctionDefinition | None:
        return self.functions.get(normalize_path(path))

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.functions))


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FunctionLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise FunctionLoadError(f"{path}: {type(e).__name__}: {e}") from e
    return module


def load_functions(root: Path | str, *, namespace: str = "_app_functions") -> FunctionRegistry:
    """Import every module under `root` (not starting with `_`; `schema.py`
    gives the schema) and collect its function definitions."""
    root = Path(root)
    if not root.is_dir():
        raise FunctionLoadError(f"functions folder {root} does not exist")
    functions: dict[str, FunctionDefinition] = {}
    schema = None
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        module = _import(path, f"{namespace}.{'.'.join(rel.parts)}")
        if rel.parts == ("schema",):
            schema = getattr(module, "schema", None)
            continue
        module_path = "/".join(rel.parts)
        for export, value in vars(module).items():
            if isinstance(value, FunctionDefinition):
                functions[f"{module_path}:{export}"] = value
    return FunctionRegistry(functions, schema)
