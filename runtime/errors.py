"""Error classes shared by every layer.

`PlatformError` subclasses carry a stable `code` (clients and tests match on
it) and a message that says what went wrong and what to do. `ConvexError` is
the application's own error: its `data` reaches the caller as `errorData`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConvexError", "InvalidIdError", "PlatformError", "SchemaError", "ValidationError"]


class PlatformError(Exception):
    code: str = "INTERNAL"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = details

    def __str__(self) -> str:
        return self.message


class ValidationError(PlatformError):
    """A value did not match a validator: `path: expected X, got Y`."""

    code = "VALIDATION_FAILED"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}", path=path)
        self.path = path
        self.problem = problem


class InvalidIdError(PlatformError):
    code = "INVALID_ID"


class SchemaError(PlatformError):
    code = "SCHEMA_INVALID"


class ConvexError(Exception):
    """Raise from a function to send `data` (any Convex value) to the caller."""

    def __init__(self, data: Any = None) -> None:
        self.data = data
        super().__init__(data if isinstance(data, str) else repr(data))
