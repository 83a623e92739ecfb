"""The official Convex JS client (npm `convex`, `ConvexClient` from
`convex/browser`) under Node, against the dev server's sync socket."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from convex.http_client import ConvexHttpClient

from tests.support.shells import Backend

JS = Path(__file__).resolve().parents[1] / "js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def setup_module() -> None:
    assert (JS / "node_modules" / "convex").is_dir(), "run `make js-deps` (make test does)"


def test_js_client_sees_updates_and_its_mutation_resolves_after_its_effects(
    chat: Backend,
) -> None:
    events = []
    with subprocess.Popen(
        ["node", "live.mjs", chat.url, "js-channel"],
        cwd=JS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            for line in proc.stdout:
                event = json.loads(line)
                events.append(event)
                if event["event"] == "ready":
                    ConvexHttpClient(chat.url).mutation(
                        "messages:send", {"channel": "js-channel", "body": "from py"}
                    )
            proc.wait(timeout=30)
            stderr = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, (events, stderr)
    updates = [e["value"] for e in events if e["event"] == "update"]
    assert updates[:2] == [[], ["from py"]]
    mutated = next(e for e in events if e["event"] == "mutated")
    assert mutated["latest"] == ["from py", "from js"]  # visible when the promise resolved
    assert next(e for e in events if e["event"] == "query")["total"] >= 2
    assert (
        "ArgumentValidationError: Value does not match validator.\nPath: .channel"
        in next(e for e in events if e["event"] == "error")["message"]
    )


def test_js_paginated_subscription_stays_gapless(chat: Backend) -> None:
    done = subprocess.run(
        ["node", "paginated.mjs", chat.url], cwd=JS, capture_output=True, text=True, timeout=60
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, (events, done.stderr)
    states = [(e["ranks"], e["status"]) for e in events if e["event"] == "state"]
    assert states[0] == ([10, 20], "CanLoadMore")
    assert states[4] == ([10, 15, 30, 40, 50], "Exhausted")
    assert events[-1] == {"event": "done"}


def test_js_client_converges_when_its_socket_is_cut_mid_stream(chat: Backend) -> None:
    from tests.support.tcp_proxy import TcpProxy

    proxy = TcpProxy(int(chat.url.rsplit(":", 1)[1]))
    count = 30
    try:
        with subprocess.Popen(
            ["node", "reconnect.mjs", f"http://127.0.0.1:{proxy.port}", "cut-channel", str(count)],
            cwd=JS,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            assert json.loads(proc.stdout.readline())["event"] == "started"
            cuts = 0
            deadline = time.monotonic() + 10
            while cuts < 3 and time.monotonic() < deadline:  # cut while mutations are in flight
                time.sleep(0.1)
                cuts += proxy.cut()
            out, err = proc.communicate(timeout=60)
    finally:
        proxy.close()
    # The client also logs its reconnects on stdout; our lines are JSON.
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, (out, err)
    assert cuts >= 2
    final = next(e for e in events if e["event"] == "final")["value"]
    assert sorted(final) == sorted(f"m{i}" for i in range(count))  # each applied exactly once
    stored = ConvexHttpClient(chat.url).query("messages:list", {"channel": "cut-channel"})
    assert sorted(stored) == sorted(final)


def test_a_burst_of_mutations_from_one_js_client_lands_in_the_order_sent(
    chat: Backend,
) -> None:
    """Thirty `client.mutation` calls made at once (none awaited before the
    next): Convex runs one client's mutations one at a time in the order
    called, so the writes land, and the promises resolve, in that order."""
    done = subprocess.run(
        ["node", "ordered.mjs", chat.url, "js-burst", "30"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [str(i) for i in range(30)]
    assert result["landed"] == expected
    assert result["resolved"] == expected
