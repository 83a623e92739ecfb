"""export / import (being built)."""

from __future__ import annotations

from pathlib import Path

from .client import BackendClient, CliError


def export(client: BackendClient, path: Path) -> int:
    raise CliError("export is not built yet")


def import_(client: BackendClient, file: Path, table: str | None, mode: str | None) -> int:
    raise CliError("import is not built yet")
