"""Snapshots: export every table to a zip, import documents all or nothing.

Independent of HTTP: `runtime.http.snapshot_routes` and the CLI are thin
layers over it, and another shell (AWS) can call it on its `Database`.
"""

from .export import SnapshotWriter, export_database, table_pages
from .format import (
    ImportDocument,
    ImportFormat,
    SnapshotError,
    TableImport,
    check_file,
    iter_jsonl,
    parse_import,
    parse_jsonl,
    read_zip_tables,
)
from .importer import ImportFailed, ImportMode, ImportReport, apply_import, check_import

__all__ = [
    "ImportDocument",
    "ImportFailed",
    "ImportFormat",
    "ImportMode",
    "ImportReport",
    "SnapshotError",
    "SnapshotWriter",
    "TableImport",
    "apply_import",
    "check_file",
    "check_import",
    "export_database",
    "iter_jsonl",
    "parse_import",
    "parse_jsonl",
    "read_zip_tables",
    "table_pages",
]
