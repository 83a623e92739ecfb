"""Actions that nest without end fail fast with an error that names the
chain (on both shells, through the official JS HTTP client), and a dev
server stops promptly while an action is stuck, naming what it abandons."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.devserver import start_dev_server
from tests.support.shells import Backend, app_on_shell

APP = Path(__file__).parent / "apps" / "compat_actions"
JS = Path(__file__).resolve().parents[1] / "js"

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


@pytest.fixture(scope="module")
def loops(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "loops", shell, dynamodb_for, tmp_path_factory)


def _js_action(url: str, path: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """How `ConvexHttpClient.action` ends: {"value": ...} or {"error": message}."""
    done = subprocess.run(
        ["node", "compat_actions.mjs", url, path, json.dumps(args or {})],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@needs_node
@pytest.mark.parametrize(
    ("path", "chain"),
    [
        ("loops:self_call", "loops:self_call -> loops:self_call -> loops:self_call"),
        ("loops:ping", "loops:ping -> loops:pong -> loops:ping"),
    ],
)
def test_an_action_that_calls_itself_without_end_fails_with_the_chain(
    loops: Backend, path: str, chain: str
) -> None:
    answer = _js_action(loops.url, path)
    assert "value" not in answer, answer
    error = answer["error"]
    assert "would nest actions 9 deep; the limit is 8 (ACTION_CALL_DEPTH)" in error
    assert chain in error and "is already running in this chain" in error


@needs_node
def test_a_recursion_that_ends_within_the_limit_runs(loops: Backend) -> None:
    assert _js_action(loops.url, "loops:count_down", {"n": 8}) == {"value": 8}


def _wait_for(path: Path, bound: float) -> None:
    deadline = time.monotonic() + bound
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {bound} s"
        time.sleep(0.05)


def _call_over_http(url: str, path: str, args: dict[str, Any]) -> None:
    threading.Thread(
        target=lambda: requests.post(
            f"{url}/api/action", json={"path": path, "args": args}, timeout=120
        ),
        daemon=True,
    ).start()


def _call_over_the_socket(url: str, path: str, args: dict[str, Any]) -> subprocess.Popen[bytes]:
    """The official Python client (its own process: it holds the GIL while it waits)."""
    code = f"from convex import ConvexClient; ConvexClient({url!r}).action({path!r}, {args!r})"
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)


@pytest.mark.parametrize(
    ("via", "path", "sig", "abandoned"),
    [
        ("http", "loops:stuck", signal.SIGTERM, ["loops:stuck"]),
        ("http", "loops:stuck_below", signal.SIGINT, ["loops:stuck_below -> loops:stuck"]),
        ("socket", "loops:stuck", signal.SIGTERM, ["loops:stuck"]),
    ],
)
def test_the_dev_server_stops_promptly_while_an_action_is_stuck(
    tmp_path: Path, via: str, path: str, sig: signal.Signals, abandoned: list[str]
) -> None:
    server = start_dev_server(APP, tmp_path / "data")
    marker = tmp_path / "started"
    args = {"marker": str(marker)}
    client = None
    try:
        if via == "http":
            _call_over_http(server.url, path, args)
        else:
            client = _call_over_the_socket(server.url, path, args)
        _wait_for(marker, 30)
        server.process.send_signal(sig)
        # A liveness bound, not a timing figure: before, it waited for the
        # action (forever for a stuck one).
        code = server.process.wait(15)
        log = server.log()
        assert code == 0, log
        for chain in abandoned:
            assert f"stopping: abandoned action {chain} (running " in log
        assert "pyconvex dev backend stopped" in log
    finally:
        server.stop()
        if client is not None:
            client.kill()
            client.wait(10)


def test_the_local_aws_harness_stops_promptly_while_an_action_is_stuck(
    tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    from tests.support.awslocal import start_aws_local

    server = start_aws_local(
        APP, tmp_path / "data", table="stuck", dynamodb_endpoint=dynamodb_local_endpoint
    )
    marker = tmp_path / "started"
    try:
        _call_over_http(server.url, "loops:stuck", {"marker": str(marker)})
        _wait_for(marker, 30)
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(15)  # a liveness bound: before, it waited forever
        log = server.log()
        assert code == 0, log
        assert "stopping: abandoned a pyconvex-http call (running " in log
        assert "pyconvex aws-local stopped" in log
    finally:
        server.stop()
