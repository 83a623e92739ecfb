"""The dev server's event loop and HTTP parser: uvloop and httptools where
installed (the `local` extra, part of `dev`), asyncio and h11 where not,
the same API either way (runtime/local/dev.py; uvicorn's "auto")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from convex import ConvexInt64
from convex.http_client import ConvexHttpClient

from tests.support.devserver import APP_FUNCTIONS, DevServer, dev_server

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the server's /proc/<pid>/maps"
)


def _loaded(server: DevServer) -> str:
    """The shared objects mapped into the server process."""
    return Path(f"/proc/{server.process.pid}/maps").read_text()


def _transfer_round(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    for owner in ("ann", "bob"):
        client.mutation("bank:open", {"owner": owner})
    client.mutation("bank:deposit", {"owner": "ann", "amount": ConvexInt64(10)})
    client.mutation("bank:transfer", {"source": "ann", "target": "bob", "amount": ConvexInt64(3)})
    assert client.query("bank:balance", {"owner": "bob"}) == ConvexInt64(3)


def test_the_dev_server_serves_on_uvloop_and_httptools(tmp_path: Path) -> None:
    with dev_server(APP_FUNCTIONS, tmp_path / "data") as server:
        _transfer_round(server)
        maps = _loaded(server)
    assert "/uvloop/" in maps, "uvloop is not installed or not used: pip install -e '.[dev]'"
    assert "/httptools/" in maps, "httptools is not installed or not used"


def test_without_them_it_serves_on_asyncio_and_h11(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for name in ("uvloop", "httptools"):  # an import of either fails, as if not installed
        (hidden / f"{name}.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
    path = os.pathsep.join(p for p in (str(hidden), os.environ.get("PYTHONPATH")) if p)
    with dev_server(APP_FUNCTIONS, tmp_path / "data", env={"PYTHONPATH": path}) as server:
        _transfer_round(server)
        maps = _loaded(server)
    assert "/uvloop/" not in maps
    assert "/httptools/" not in maps
