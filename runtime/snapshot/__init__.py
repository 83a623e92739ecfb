"""Snapshots: export every table to a zip, import documents all or nothing.

Independent of HTTP: `runtime.http.snapshot_routes` and the CLI are thin
layers over it, and another shell (AWS) can call it on its `Database`.
"""

from .export import SnapshotWriter, export_database, table_pages, user_tables
from .files import FilesImport, check_files, import_with_files, read_zip_files, storage_pages
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
    "FilesImport",
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
    "check_files",
    "check_import",
    "export_database",
    "import_with_files",
    "iter_jsonl",
    "parse_import",
    "parse_jsonl",
    "read_zip_files",
    "read_zip_tables",
    "storage_pages",
    "table_pages",
    "user_tables",
]
