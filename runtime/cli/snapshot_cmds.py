"""`export` and `import`: the CLI side of the snapshot routes, with progress bars.

Export pages through every table and writes the zip itself, to a temporary
file renamed into place at the end (an interrupted export leaves no partial
zip); table by table, page by page, so not a point-in-time snapshot across
tables. Import first checks the whole file here (a bad line fails naming it
before anything is uploaded), uploads it, then follows the server's progress
lines (the server checks it again, against the schema too, before writing).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from runtime.limits import IMPORT_ARCHIVE_BYTES, IMPORT_BYTES
from runtime.snapshot import (
    ImportFormat,
    SnapshotError,
    SnapshotWriter,
    check_file,
    read_zip_files,
)

from .client import BackendClient, CliError

__all__ = ["export", "import_"]

_PAGE = 1000


def _console() -> Console:
    return Console(stderr=True)


def export(client: BackendClient, path: Path, *, include_files: bool = False) -> int:
    if path.suffix != ".zip":
        raise CliError(f"the export path must end in .zip: {path}")
    tables: list[str] = client.json("GET", "/api/admin/tables")["tables"]
    with (
        SnapshotWriter(path) as writer,
        Progress(
            TextColumn("{task.description}"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_console(),
        ) as bar,
    ):
        for table in tables:
            task = bar.add_task(f"export {table}", total=None)

            def pages(table: str = table, task: Any = task) -> Iterator[list[dict[str, Any]]]:
                cursor, done = None, 0
                while True:
                    page = client.json(
                        "POST",
                        "/api/admin/export/page",
                        {"table": table, "cursor": cursor, "numItems": _PAGE},
                    )
                    yield page["documents"]
                    done += len(page["documents"])
                    bar.update(task, completed=done)
                    if page["done"]:
                        return
                    cursor = page["cursor"]

            n = writer.add_table(table, pages(), encoded=True)
            bar.update(task, completed=n, total=n)
        if include_files:
            task = bar.add_task("export files", total=None)
            writer.add_files(
                _file_pages(client),
                functools.partial(_open_file, client),
                lambda files, done: bar.update(task, completed=files),
            )
    counts = writer.counts
    total = sum(counts.values())
    files = f" and {writer.files} files" if include_files else ""
    print(f"exported {total} documents from {len(tables)} tables{files} to {path}")
    return 0


def _file_pages(client: BackendClient) -> Iterator[list[dict[str, Any]]]:
    cursor = None
    while True:
        page = client.json("POST", "/api/admin/export/files", {"cursor": cursor, "numItems": _PAGE})
        yield page["files"]
        if page["done"]:
            return
        cursor = page["cursor"]


def _open_file(client: BackendClient, line: dict[str, Any]) -> BinaryIO | None:
    """A file's bytes as the backend streams them; None if it was deleted since."""
    status, answer = client.download(f"/api/admin/export/file/{line['_id']}")
    if status == 404:
        answer.close()
        return None
    if status >= 400:
        with answer:
            raise CliError(f"GET file {line['_id']}: HTTP {status}: {answer.read(300)!r}")
    return answer  # type: ignore[return-value]


def _chunks(path: Path, bar: Progress, task: Any) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            bar.update(task, advance=len(chunk))
            yield chunk


def import_(client: BackendClient, file: Path, table: str | None, mode: str | None) -> int:
    if not file.is_file():
        raise CliError(f"no such file: {file}")
    fmt: ImportFormat
    if file.suffix == ".zip":
        fmt = "zip"
    elif file.suffix in (".jsonl", ".ndjson"):
        fmt = "jsonl"
        if table is None:
            raise CliError("a .jsonl import needs --table TABLE")
    else:
        raise CliError(f"import reads a .jsonl file or a snapshot .zip, not {file.name}")
    size = file.stat().st_size
    cap = IMPORT_ARCHIVE_BYTES if fmt == "zip" else IMPORT_BYTES
    if size > cap:
        raise CliError(
            f"{file} is {size} bytes; an import is at most {cap} (split it into several files)"
        )
    query = f"?format={fmt}&mode={mode or 'create'}" + (f"&table={table}" if table else "")
    result: dict[str, Any] | None = None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
    ) as bar:
        # Every line checked here first: a bad file fails before the upload.
        check = bar.add_task("check (bytes)", total=None)
        try:
            check_file(
                file,
                fmt,
                table,
                lambda done, total: bar.update(check, completed=done, total=total),
            )
            if fmt == "zip" and table is None:
                read_zip_files(file)  # the files' lines, and each file's size in the zip
        except SnapshotError as e:
            raise CliError(f"{e.code}: {e.message}") from None
        upload = bar.add_task("upload (bytes)", total=size)
        status, lines = client.stream(
            "POST",
            "/api/admin/import" + query,
            _chunks(file, bar, upload),
            content_type="application/octet-stream",
            length=size,
        )
        if status >= 400:
            body = json.loads(b"".join(lines) or b"{}")
            raise CliError(f"{body.get('code', status)}: {body.get('message', 'import refused')}")
        tasks: dict[str, Any] = {}
        for raw in lines:
            line = json.loads(raw)
            if "phase" in line:
                phase = line["phase"]
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=line["total"])
                bar.update(tasks[phase], completed=line["done"], total=line["total"])
            elif "error" in line:
                raise CliError(f"{line['error']['code']}: {line['error']['message']}")
            elif "result" in line:
                result = line["result"]
    if result is None:
        raise CliError("the backend closed the import without a result; check its log")
    for name, n in sorted(result["imported"].items()):
        deleted = result["deleted"].get(name)
        replaced = f" (replacing {deleted})" if deleted is not None else ""
        what = "files" if name == "_storage" else f"documents into {name}"
        print(f"imported {n} {what}{replaced}")
    return 0
