"""Errors of the database core, each with a stable code and a message that says what to do."""

from __future__ import annotations

from runtime.errors import PlatformError

__all__ = [
    "DocumentNotFoundError",
    "InvalidCursorError",
    "InvalidDocumentError",
    "InvalidQueryError",
    "NotUniqueError",
    "OccConflictError",
    "ReadOnlyError",
    "TableNotInSchemaError",
    "TransactionTooLargeError",
]


class InvalidDocumentError(PlatformError):
    """A document (or patch) breaks a value rule, a limit or an index rule."""

    code = "INVALID_DOCUMENT"


class DocumentNotFoundError(PlatformError):
    code = "DOCUMENT_NOT_FOUND"


class InvalidQueryError(PlatformError):
    """A query names an unknown index, or an index range out of field order."""

    code = "INVALID_QUERY"


class InvalidCursorError(PlatformError):
    code = "INVALID_CURSOR"


class NotUniqueError(PlatformError):
    code = "NOT_UNIQUE"


class ReadOnlyError(PlatformError):
    code = "READ_ONLY"


class TableNotInSchemaError(PlatformError):
    code = "TABLE_NOT_IN_SCHEMA"


class OccConflictError(PlatformError):
    """The mutation kept conflicting with concurrent writes past the retry bound."""

    code = "OCC_CONFLICT"


class TransactionTooLargeError(PlatformError):
    """The commit needs more items or bytes than one DynamoDB transaction carries."""

    code = "TRANSACTION_TOO_LARGE"
