"""Where one mutation's time goes, by phase (issue 19: measure first).

One-document inserts through `Executor.call` into a table with two indexes
(plus the built-in ones), on a SQLite file. First the wall-clock median per
call, then a cProfile of the same calls with each function's own time
(tottime) charged to the phase of the module it lives in:

- `store`: the SQLite adapter and sqlite3 itself (statements, COMMIT);
- `commit`: planning and checking the commit (runtime/database/commit,
  readwrite, transaction);
- `indexes`: index keys and range versions (runtime/database/indexes,
  index_range, layout, fields);
- `values`: validation, encoding, ids (runtime/values, runtime/schema);
- `functions`: the executor, the function context, determinism guards,
  logging (runtime/functions);
- `other`: everything else (the interpreter's own, stdlib).

Figures (per call, one run): profile_insert_p50_us, then
profile_phase_<phase>_us for each phase (the profiled per-call time, which
cProfile inflates; read the shares, not the sums) and
profile_phase_<phase>_share (of the profiled total).

Run: `python bench/profile.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named as the issue names it, which shadows the standard
# library's `profile` (cProfile imports it): the repository root replaces
# bench/ at the head of the path before anything else is imported.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from runtime.backend import Backend  # noqa: E402
from runtime.store.sqlite import SqliteStore  # noqa: E402

APP = {
    "schema.py": """
from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "items": define_table({"list": v.int64(), "name": v.string(), "score": v.number()})
        .index("by_list", ["list"])
        .index("by_name", ["name"])
    }
)
""",
    "items.py": """
from runtime import mutation, v


@mutation(args={"list": v.int64(), "name": v.string(), "score": v.number()})
def add(ctx, args):
    return ctx.db.insert("items", args)
""",
}

PHASES = [
    ("store", ("runtime/store/", "sqlite3", "{method 'execute'", "{method 'commit'")),
    (
        "commit",
        ("runtime/database/commit", "runtime/database/readwrite", "runtime/database/transaction"),
    ),
    ("indexes", ("runtime/database/index", "runtime/database/layout", "runtime/database/fields")),
    ("values", ("runtime/values/", "runtime/schema/", "runtime/database/documents")),
    ("functions", ("runtime/functions/", "runtime/backend", "runtime/database/database")),
]


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def phase_of(where: str) -> str:
    for name, marks in PHASES:
        if any(mark in where for mark in marks):
            return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    opts, _ = parser.parse_known_args()  # make bench passes every bench the same BENCH_ARGS
    calls = 500 if opts.quick else 3000
    with tempfile.TemporaryDirectory() as tmp:
        functions = Path(tmp) / "functions"
        functions.mkdir()
        for name, text in APP.items():
            (functions / name).write_text(text)
        backend = Backend(SqliteStore(str(Path(tmp) / "db.sqlite3")), functions, admin_key=None)
        report = backend.reload()
        if not report.ok:
            raise SystemExit(report.message)
        call = backend.executor.call
        for i in range(200):  # warm up: the registry, caches, the file's first pages
            call("items:add", {"list": i % 7, "name": f"w{i}", "score": 0.5})
        times = []
        for i in range(calls):
            start = time.perf_counter()
            call("items:add", {"list": i % 7, "name": f"n{i}", "score": 1.5})
            times.append(time.perf_counter() - start)
        figure("profile_insert_p50_us", statistics.median(times) * 1e6, "us")

        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(calls):
            call("items:add", {"list": i % 7, "name": f"p{i}", "score": 2.5})
        profiler.disable()
        backend.close()

    stats = pstats.Stats(profiler)
    spent: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename} {function}"
        phase = phase_of(where)
        spent[phase] = spent.get(phase, 0.0) + tottime
    total = sum(spent.values())
    for phase, _ in [*PHASES, ("other", ())]:
        figure(f"profile_phase_{phase}_us", spent.get(phase, 0.0) / calls * 1e6, "us")
        figure(f"profile_phase_{phase}_share", spent.get(phase, 0.0) / total, "x")


if __name__ == "__main__":
    main()
