"""User functions: definitions, the registry of `functions/`, running them."""

from .http_router import HttpRouter, http_action
from .registry import (
    FunctionDefinition,
    FunctionLoadError,
    FunctionRegistry,
    action,
    internal_action,
    internal_mutation,
    internal_query,
    load_functions,
    mutation,
    normalize_path,
    query,
)

__all__ = [
    "FunctionDefinition",
    "FunctionLoadError",
    "FunctionRegistry",
    "HttpRouter",
    "action",
    "http_action",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "load_functions",
    "mutation",
    "normalize_path",
    "query",
]
