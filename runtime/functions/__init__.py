"""User functions: definitions, the registry of `functions/`."""

from .registry import (
    FunctionDefinition,
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
