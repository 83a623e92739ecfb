"""Cold start of one Lambda handler, in this fresh process: import, then the
first invocation. Run by bench/aws.py (a child process per handler); prints
one JSON line {"import_ms", "first_ms", "second_ms"}.

Usage: python bench/aws_cold.py http|ws|stream EVENT_JSON_FILE [CODE_DIR]

CODE_DIR (default: the repository) goes first on sys.path: bench/aws.py
passes the built Lambda package (infra/package.py), run by an interpreter of
the Lambda's Python with `-I -S`, so only the package (as Lambda's
/var/task) and the standard library are importable.
"""

from __future__ import annotations

import time

started = time.perf_counter()

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, sys.argv[3] if len(sys.argv) > 3 else str(Path(__file__).resolve().parents[1]))


class Context:
    function_name = "pyconvex-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:pyconvex-bench"
    log_group_name = "/aws/lambda/pyconvex-bench"
    log_stream_name = "bench"

    def __init__(self, n: int) -> None:
        self.aws_request_id = f"bench-{n}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> None:
    kind, event_file = sys.argv[1], sys.argv[2]
    events = json.loads(Path(event_file).read_text())
    t0 = time.perf_counter()
    module = importlib.import_module(f"runtime.aws.{kind}")
    t1 = time.perf_counter()
    module.handler(events[0], Context(0))
    t2 = time.perf_counter()
    module.handler(events[1 % len(events)], Context(1))
    t3 = time.perf_counter()
    print(
        json.dumps(
            {
                "interpreter_ms": (t0 - started) * 1000,
                "import_ms": (t1 - t0) * 1000,
                "first_ms": (t2 - t1) * 1000,
                "second_ms": (t3 - t2) * 1000,
            }
        ),
        file=sys.__stdout__,
    )


if __name__ == "__main__":
    main()
