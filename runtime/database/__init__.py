"""The database core: transactions (OCC), read/write sets, index maintenance, queries, pagination."""

from .database import Database, Outcome
from .errors import (
    DocumentNotFoundError,
    InvalidCursorError,
    InvalidDocumentError,
    InvalidQueryError,
    NotUniqueError,
    OccConflictError,
    ReadOnlyError,
    TableNotInSchemaError,
    TransactionTooLargeError,
)
from .transaction import Transaction

__all__ = [
    "Database",
    "DocumentNotFoundError",
    "InvalidCursorError",
    "InvalidDocumentError",
    "InvalidQueryError",
    "NotUniqueError",
    "OccConflictError",
    "Outcome",
    "ReadOnlyError",
    "TableNotInSchemaError",
    "Transaction",
    "TransactionTooLargeError",
]
