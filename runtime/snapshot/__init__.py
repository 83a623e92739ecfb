"""Snapshots: export every table to a zip, import documents all or nothing."""

from .format import ImportDocument, SnapshotError, TableImport, parse_jsonl, read_zip_tables
from .importer import ImportFailed, ImportMode, ImportReport, apply_import, check_import

__all__ = [
    "ImportDocument",
    "ImportFailed",
    "ImportMode",
    "ImportReport",
    "SnapshotError",
    "TableImport",
    "apply_import",
    "check_import",
    "parse_jsonl",
    "read_zip_tables",
]
