"""Fixtures that run the dev server as a subprocess (on free loopback ports)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.devserver import APP_FUNCTIONS, DevServer, start_dev_server
from tests.support.dynamodb_local import running_dynamodb_local
from tests.support.shells import SHELLS, Backend, app_on_shell

CHAT = Path(__file__).parent / "apps" / "chat"


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """The example app in functions/, on a fresh data folder, shared by a module."""
    server = start_dev_server(APP_FUNCTIONS, tmp_path_factory.mktemp("app") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module", params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    """Each end-to-end test runs on both shells: the dev server and the
    local AWS harness (Lambda handlers on DynamoDB Local)."""
    name: str = request.param
    if name == "aws" and os.environ.get("SKIP_DYNAMODB_LOCAL") == "1":
        pytest.skip("SKIP_DYNAMODB_LOCAL=1")
    return name


@pytest.fixture(scope="module")
def dynamodb_for(shell: str) -> Iterator[str | None]:
    """A DynamoDB Local of the module's own for the AWS shell (None for dev).
    Not the session's: DynamoDB Local slows down for the rest of its life as
    stream records pile up (deleted tables' too), and the harness's tables
    have streams; late in the suite its calls took several times longer and
    the JS reconnect test ran into its 45 s limit. A start costs seconds."""
    if shell != "aws":
        yield None
        return
    with running_dynamodb_local() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def chat(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The chat test app (tests/integration/apps/chat) on one shell, shared by a module."""
    yield from app_on_shell(CHAT, "chat", shell, dynamodb_for, tmp_path_factory)


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
