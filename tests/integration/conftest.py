"""Fixtures that run the dev server as a subprocess (on free loopback ports)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.devserver import APP_FUNCTIONS, DevServer, start_dev_server


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """The example app in functions/, on a fresh data folder, shared by a module."""
    server = start_dev_server(APP_FUNCTIONS, tmp_path_factory.mktemp("app") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """The chat test app (tests/integration/apps/chat), shared by a module."""
    server = start_dev_server(
        Path(__file__).parent / "apps" / "chat", tmp_path_factory.mktemp("chat") / "data"
    )
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., DevServer]]:
    """Start a dev server on a copy of a functions folder (tests may edit it)."""
    started: list[DevServer] = []

    def start(functions: Path = APP_FUNCTIONS, **kwargs: object) -> DevServer:
        copy = tmp_path / f"functions{len(started)}"
        shutil.copytree(functions, copy, ignore=shutil.ignore_patterns("__pycache__"))
        server = start_dev_server(copy, tmp_path / f"data{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
