"""Schemas: tables, their validators, indexes and search indexes."""

from .definition import (
    SchemaDefinition,
    SearchIndexDefinition,
    TableDefinition,
    define_schema,
    define_table,
    index_fields,
)

__all__ = [
    "SchemaDefinition",
    "SearchIndexDefinition",
    "TableDefinition",
    "define_schema",
    "define_table",
    "index_fields",
]
