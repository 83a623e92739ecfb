"""The dev server runs a short query or mutation on its event loop, without a
worker thread's hops, once its last runs were short; a new, slow or reloaded
one runs in a worker; actions never on the loop (runtime/http/inline.py).
Conflicting transfers, some on the loop and some in workers, lose nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from convex import ConvexInt64
from convex.http_client import ConvexHttpClient

from runtime.limits import INLINE_AFTER_SHORT_RUNS, INLINE_CALL_SECONDS, INLINE_WALL_SECONDS
from tests.support.devserver import DevServer, dev_server

APP = Path(__file__).parent / "apps" / "http_path"
LOOP = "MainThread"  # uvicorn serves on the main thread of `python -m runtime dev`
WORKER = "AnyIO worker thread"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with dev_server(APP, tmp_path_factory.mktemp("inline") / "data") as running:
        yield running


def test_a_short_mutation_moves_to_the_loop_after_its_short_runs(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    threads = [client.mutation("where:touch", {}) for _ in range(INLINE_AFTER_SHORT_RUNS + 3)]
    assert threads[:INLINE_AFTER_SHORT_RUNS] == [WORKER] * INLINE_AFTER_SHORT_RUNS
    assert threads[INLINE_AFTER_SHORT_RUNS:] == [LOOP] * 3


def test_a_short_query_too_and_actions_never(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    looks = [client.query("where:look", {}) for _ in range(INLINE_AFTER_SHORT_RUNS + 1)]
    assert looks[-1] == LOOP
    acts = {client.action("where:act", {}) for _ in range(INLINE_AFTER_SHORT_RUNS + 2)}
    assert acts.isdisjoint({LOOP, WORKER}), acts  # the action pool's threads


def test_a_busy_mutation_stays_in_workers(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    busy = {"busy": INLINE_CALL_SECONDS * 10}  # CPU time: under load too
    client.mutation("where:touch", busy)  # on the loop if its runs so far were short
    threads = {client.mutation("where:touch", busy) for _ in range(INLINE_AFTER_SHORT_RUNS + 2)}
    assert threads == {WORKER}


def test_one_slow_run_on_the_loop_sends_it_back_to_the_workers(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    for _ in range(INLINE_AFTER_SHORT_RUNS):
        client.query("where:look", {})
    assert client.query("where:look", {}) == LOOP
    # A sleep is no CPU but holds the loop: its wall time counts there.
    assert client.query("where:look", {"sleep": INLINE_WALL_SECONDS * 3}) == LOOP
    after = [client.query("where:look", {}) for _ in range(INLINE_AFTER_SHORT_RUNS + 1)]
    assert after[:INLINE_AFTER_SHORT_RUNS] == [WORKER] * INLINE_AFTER_SHORT_RUNS
    assert after[-1] == LOOP


def test_conflicting_transfers_on_the_loop_and_in_workers_add_up(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    owners = [f"acct{i}" for i in range(4)]
    for owner in owners:
        client.mutation("bank:open", {"owner": owner, "balance": ConvexInt64(1000)})
    clients, calls = 8, 30  # 8 clients over 4 accounts: most transfers conflict
    errors: list[BaseException] = []

    def run(c: int) -> None:
        mine = ConvexHttpClient(server.url)
        try:
            for i in range(calls):
                source, target = owners[(c + i) % 4], owners[(c + 2 * i + 1) % 4]
                if source != target:
                    mine.mutation(
                        "bank:transfer",
                        {"source": source, "target": target, "amount": ConvexInt64(c + 1)},
                    )
        except BaseException as e:  # reported below
            errors.append(e)

    workers = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors[0]
    expected = dict.fromkeys(owners, 1000)
    for c in range(clients):
        for i in range(calls):
            source, target = owners[(c + i) % 4], owners[(c + 2 * i + 1) % 4]
            if source != target:
                expected[source] -= c + 1
                expected[target] += c + 1
    balances = client.query("bank:balances", {})
    assert {k: v.value for k, v in balances.items()} == expected


def test_a_reloaded_function_starts_in_a_worker(tmp_path: Path) -> None:
    app = tmp_path / "functions"
    app.mkdir()
    (app / "where.py").write_text((APP / "where.py").read_text())
    with dev_server(app, tmp_path / "data") as running:
        client = ConvexHttpClient(running.url)
        # On the loop first. A fresh server's first runs may be slow on a
        # loaded machine (each resets the count): allow a few rounds.
        threads = []
        for _ in range(5 * (INLINE_AFTER_SHORT_RUNS + 1)):
            threads.append(client.mutation("where:touch", {}))
            if threads[-1] == LOOP:
                break
        assert threads[-1] == LOOP, threads
        assert len(threads) > INLINE_AFTER_SHORT_RUNS  # never before its short runs
        text = (app / "where.py").read_text() + "\n\n# edited\n"
        (app / "where.py").write_text(text)
        _wait_for_reload(running)
        assert client.mutation("where:touch", {}) == WORKER


def _wait_for_reload(server: DevServer) -> None:
    """Until the log says `reloaded` (the watcher saw the edit)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "reloaded:" in server.log():
            return
        time.sleep(0.05)
    raise AssertionError(f"no reload in the log:\n{server.log()}")
