"""Scheduled functions on the dev server's stack, in process (a Backend on
SQLite in a temp dir, its embedded timer started as `python -m runtime dev`
starts it).

Figures:
- scheduler_start_p50_ms / _p90_ms: from the call of a mutation that does
  `ctx.scheduler.run_after(0, ...)` to the scheduled mutation's start (its
  call log entry's end minus its duration); goal p50 <= 10 ms;
- scheduler_idle_cpu_s: CPU seconds the whole process used over 5 s idle
  with 10,000 pending far-future jobs (goal ~0: the timer sleeps until the
  earliest one, no polling);
- scheduler_drain_jobs_s: 10,000 jobs already due when the timer starts,
  drained; scheduler_direct_calls_s: the same mutation called 10,000 times
  directly, one after the other; scheduler_drain_vs_direct: the ratio of
  their rates (goal >= 0.5).

Run: `python bench/scheduler.py [--quick]` (--quick: 2,000 jobs, 50 samples).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.backend import Backend
from runtime.functions.executor import CallResult
from runtime.store.sqlite import SqliteStore

FUNCTIONS = """
from runtime import internal_mutation, mutation, v


@mutation(args={"n": v.float64(), "delay": v.float64()})
def plan(ctx, args):
    for i in range(int(args["n"])):
        ctx.scheduler.run_after(args["delay"], work, {"i": float(i)})


@mutation(args={})
def kick(ctx, args):
    ctx.scheduler.run_after(0, mark, {})


@internal_mutation(args={})
def mark(ctx, args):
    pass


@internal_mutation(args={"i": v.float64()})
def work(ctx, args):
    ctx.db.insert("work", {"i": args["i"]})
"""


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def _backend(folder: Path) -> Backend:
    functions = folder / "functions"
    functions.mkdir(parents=True)
    (functions / "bench.py").write_text(FUNCTIONS)
    backend = Backend(SqliteStore(str(folder / "db.sqlite3")), functions, admin_key=None)
    assert backend.reload().ok, backend.load_error
    return backend


def _call(backend: Backend, path: str, args: dict[str, object]) -> None:
    result = backend.executor.call(path, args, public_only=False)
    assert result.ok, result.error_text


def _plan(backend: Backend, n: int, delay: float) -> None:
    for start in range(0, n, 1000):
        _call(backend, "bench:plan", {"n": float(min(1000, n - start)), "delay": delay})


def start_latency(folder: Path, samples: int) -> list[float]:
    backend = _backend(folder)
    started: list[float] = []
    ran = threading.Event()

    def listen(result: CallResult) -> None:
        if result.path == "bench:mark" and result.ok:
            started.append(time.perf_counter() - result.duration)
            ran.set()

    backend.add_listener(listen)
    backend.start_timer()
    out = []
    try:
        for _ in range(samples + 5):
            ran.clear()
            t0 = time.perf_counter()
            _call(backend, "bench:kick", {})
            assert ran.wait(30)
            out.append((started[-1] - t0) * 1000)
    finally:
        backend.close()
    return out[5:]  # warm-up


def idle_cpu(folder: Path, pending: int) -> float:
    backend = _backend(folder)
    backend.start_timer()
    try:
        _plan(backend, pending, 3_600_000.0)
        time.sleep(1.0)  # the start's trim and the wake-ups settle
        before = time.process_time()
        time.sleep(5.0)
        return time.process_time() - before
    finally:
        backend.close()


def drain(folder: Path, n: int) -> float:
    backend = _backend(folder)
    _plan(backend, n, 0.0)
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def listen(result: CallResult) -> None:
        if result.path == "bench:work" and result.ok:
            with lock:
                count[0] += 1
                if count[0] == n:
                    done.set()

    backend.add_listener(listen)
    t0 = time.perf_counter()
    backend.start_timer()
    try:
        assert done.wait(600), f"drained {count[0]} of {n}"
        return time.perf_counter() - t0
    finally:
        backend.close()


def direct(folder: Path, n: int) -> float:
    backend = _backend(folder)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            _call(backend, "bench:work", {"i": float(i)})
        return time.perf_counter() - t0
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args, _ = parser.parse_known_args()
    jobs = 2000 if args.quick else 10_000
    samples = 50 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        latencies = start_latency(root / "latency", samples)
        figure("scheduler_start_p50_ms", statistics.median(latencies), "ms")
        figure("scheduler_start_p90_ms", statistics.quantiles(latencies, n=10)[-1], "ms")
        figure("scheduler_idle_cpu_s", idle_cpu(root / "idle", jobs), "s")
        figure("scheduler_idle_pending_jobs", jobs, "jobs")
        drained = drain(root / "drain", jobs)
        called = direct(root / "direct", jobs)
        figure("scheduler_drain_jobs_s", jobs / drained, "jobs/s")
        figure("scheduler_direct_calls_s", jobs / called, "calls/s")
        figure("scheduler_drain_vs_direct", called / drained, "x")


if __name__ == "__main__":
    main()
