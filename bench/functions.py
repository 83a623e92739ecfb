"""Function calls over HTTP on the dev server, next to the same mutation in-process.

Figures (one run; latencies are medians / 99th percentiles over every call):
- inproc_db_mutation_us: the counter bump as a raw `Database.mutation` (the
  database bench's in-process figure, measured here again in this run);
- inproc_call_mutation_us: the same through `Executor.call` (argument
  validation, determinism guards, log capture) in-process;
- http_seq_p50_ms / http_seq_p99_ms: one client, one call at a time, on a
  kept-alive connection; http_seq_official_p50_ms: the official
  `ConvexHttpClient` (a new connection per call);
- http_uncontended_mps / _p50_ms / _p99_ms: 16 clients, each bumping its own counter;
- http_contended_mps / _p50_ms / _p99_ms: 16 clients over 4 hot counters;
  http_contended_ratio: contended / uncontended throughput;
- http_overhead_ratio: http_seq_p50 / inproc_db_mutation.
- http_transfer_mps / _p50_ms: 16 clients, each moving 1 back and forth
  between its own two accounts with `bank:transfer` (the default app's
  functions/) on the dev server; http_transfer_reference_mps / _p50_ms: the
  same requests, same load generator, against a hand-written Starlette +
  sqlite3 endpoint doing the transfer in a threadpool (bench/http_reference.py);
  http_transfer_ratio: dev server / reference throughput (goal >= 0.7);
  http_transfer_server_cpu_us / http_transfer_reference_server_cpu_us: the
  server process's CPU time per request during that load (Linux: from
  /proc; less noisy than throughput on a shared machine, where the load
  generator's own CPU bounds both).
- auth_verify_us: verifying an RS256 bearer token whose key is cached
  (`runtime.auth.Authenticator.verify`, the cost auth adds to a call; goal <= 200 us).

Every run checks that the counters add up to the calls that succeeded.
Run: `python bench/functions.py [--quick]`.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from convex.http_client import ConvexHttpClient

from bench.http_reference import open_accounts
from runtime.database import Database
from runtime.functions import load_functions
from runtime.functions.executor import Executor
from runtime.functions.platform_store import PlatformStore
from runtime.store.sqlite import SqliteStore
from tests.support.devserver import start_dev_server
from tests.support.oidc import running_oidc_provider

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "bench" / "apps" / "counters"


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def inproc(n: int, tmp: Path) -> float:
    registry = load_functions(APP, namespace="_bench_counters")
    db = Database(PlatformStore(SqliteStore(str(tmp / "inproc.sqlite3"))))
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    (cid,) = executor.call("counters:create", {"count": 1.0}).value

    def raw() -> None:
        def body(tx: Any) -> None:
            tx.patch(cid, {"n": tx.get(cid)["n"] + 1})

        db.mutation(body)

    def call() -> None:
        assert executor.call("counters:bump", {"id": cid}).ok

    results = {}
    for name, fn in (("inproc_db_mutation_us", raw), ("inproc_call_mutation_us", call)):
        for _ in range(50):
            fn()
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        results[name] = statistics.median(samples) * 1e6
        figure(name, results[name], "us")
    return results["inproc_db_mutation_us"]


def auth_verify(n: int) -> float:
    """Median microseconds to verify a token with its provider's keys already cached."""
    from runtime.auth import Authenticator, parse_providers

    with running_oidc_provider() as provider:
        auth = Authenticator(parse_providers([provider.oidc_config()], "bench"))
        token = provider.token(name="Bench", email="bench@example.com")
        for _ in range(50):
            auth.verify(token)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            auth.verify(token)
            samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


def session() -> requests.Session:
    return requests.Session()


def call(session: requests.Session, url: str, path: str, args: dict[str, Any]) -> Any:
    r = session.post(f"{url}/api/mutation", json={"path": path, "args": args}, timeout=30)
    body = r.json()
    if body.get("status") != "success":
        raise RuntimeError(body)
    return body["value"]


def clients(
    threads: int, per_thread: int, one: Callable[[requests.Session, int, int], None]
) -> tuple[float, list[float]]:
    """`threads` clients, each on its own kept-alive connection making
    `per_thread` calls `one(conn, client, i)` one at a time: (calls per
    second, every call's latency)."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        conn = session()
        try:
            for i in range(per_thread):
                start = time.perf_counter()
                one(conn, t, i)
                latencies[t].append(time.perf_counter() - start)
        except BaseException as e:  # reported after the run
            errors.append(e)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    flat = [x for per in latencies for x in per]
    return len(flat) / elapsed, flat


def load(
    url: str, ids: list[str], threads: int, per_thread: int, hot: int | None
) -> tuple[float, list[float]]:
    def bump(conn: requests.Session, t: int, i: int) -> None:
        target = ids[(t * 7 + i) % hot] if hot is not None else ids[t]
        call(conn, url, "counters:bump", {"id": target})

    return clients(threads, per_thread, bump)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts, _ = parser.parse_known_args()  # BENCH_ARGS is shared with bench/database.py
    n = 200 if opts.quick else 1000
    per_thread = 25 if opts.quick else 100
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        base_us = inproc(n, tmp)
        figure("auth_verify_us", auth_verify(n), "us")
        server = start_dev_server(APP, tmp / "data")
        try:
            conn = session()
            url = server.url
            ids = call(conn, url, "counters:create", {"count": 16.0})
            for _ in range(50):
                call(conn, url, "counters:bump", {"id": ids[0]})
            seq = []
            for _ in range(n):
                start = time.perf_counter()
                call(conn, url, "counters:bump", {"id": ids[0]})
                seq.append(time.perf_counter() - start)
            figure("http_seq_p50_ms", statistics.median(seq) * 1e3, "ms")
            figure("http_seq_p99_ms", percentile(seq, 0.99) * 1e3, "ms")
            official = ConvexHttpClient(url)
            samples = []
            for _ in range(min(n, 300)):
                start = time.perf_counter()
                official.mutation("counters:bump", {"id": ids[1]})
                samples.append(time.perf_counter() - start)
            figure("http_seq_official_p50_ms", statistics.median(samples) * 1e3, "ms")
            figure("http_overhead_ratio", statistics.median(seq) * 1e6 / base_us, "x")

            total_before = official.query("counters:total", {"ids": ids})
            un_mps, un = load(url, ids, 16, per_thread, None)
            co_mps, co = load(url, ids, 16, per_thread, 4)
            for name, mps, lat in (("uncontended", un_mps, un), ("contended", co_mps, co)):
                figure(f"http_{name}_mps", mps, "mutations/s")
                figure(f"http_{name}_p50_ms", statistics.median(lat) * 1e3, "ms")
                figure(f"http_{name}_p99_ms", percentile(lat, 0.99) * 1e3, "ms")
            figure("http_contended_ratio", co_mps / un_mps, "x")
            total_after = official.query("counters:total", {"ids": ids})
            expected = total_before.value + len(un) + len(co)
            assert total_after.value == expected, f"lost updates: {total_after} != {expected}"
        finally:
            server.stop()
        bench_transfer(tmp, per_thread * 4)


def _int64(n: int) -> dict[str, str]:
    return {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}


def transfer_load(url: str, threads: int, per_thread: int) -> tuple[float, list[float]]:
    """`threads` clients, each moving 1 between accounts a<t> and b<t> (its
    own: no conflicts)."""

    def transfer(conn: requests.Session, t: int, i: int) -> None:
        pair = (f"a{t}", f"b{t}") if i % 2 == 0 else (f"b{t}", f"a{t}")
        call(
            conn, url, "bank:transfer", {"source": pair[0], "target": pair[1], "amount": _int64(1)}
        )

    return clients(threads, per_thread, transfer)


def bench_transfer(tmp: Path, per_thread: int) -> None:
    """bank:transfer on the dev server vs the hand-written reference endpoint."""
    owners = [f"{side}{t}" for t in range(16) for side in "ab"]
    server = start_dev_server(ROOT / "functions", tmp / "bank")
    try:
        conn = session()
        for owner in owners:
            call(conn, server.url, "bank:open", {"owner": owner})
            call(conn, server.url, "bank:deposit", {"owner": owner, "amount": _int64(10**6)})
        transfer_load(server.url, 16, 5)  # warm-up
        cpu = process_cpu(server.process.pid)
        dev_mps, dev = transfer_load(server.url, 16, per_thread)
        dev_cpu = (process_cpu(server.process.pid) - cpu) / len(dev)
    finally:
        server.stop()
    db = tmp / "reference.sqlite3"
    open_accounts(str(db), owners, 10**6)
    port = free_port()
    reference = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "http_reference.py"), str(db), str(port)],
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        transfer_load(url, 16, 5)  # warm-up
        cpu = process_cpu(reference.pid)
        ref_mps, ref = transfer_load(url, 16, per_thread)
        ref_cpu = (process_cpu(reference.pid) - cpu) / len(ref)
    finally:
        reference.terminate()
        reference.wait(10)
    figure("http_transfer_mps", dev_mps, "mutations/s")
    figure("http_transfer_p50_ms", statistics.median(dev) * 1e3, "ms")
    figure("http_transfer_reference_mps", ref_mps, "transfers/s")
    figure("http_transfer_reference_p50_ms", statistics.median(ref) * 1e3, "ms")
    figure("http_transfer_ratio", dev_mps / ref_mps, "x")
    if dev_cpu == dev_cpu:  # not NaN: /proc was there
        figure("http_transfer_server_cpu_us", dev_cpu * 1e6, "us")
        figure("http_transfer_reference_server_cpu_us", ref_cpu * 1e6, "us")


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process `pid` has used; NaN without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    main()
