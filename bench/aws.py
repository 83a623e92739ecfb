"""The AWS shell's benchmarks, one run, on DynamoDB Local (started here).

Figures:
- cold_<handler>_import_ms / cold_<handler>_first_ms / cold_<handler>_ms:
  the Lambda package as deployed: built by `infra/package.py` (the chat
  app as its functions/, dependencies as wheels, bytecode compiled by the
  Lambda's Python) into a temporary folder, then a fresh process per run
  of that Python (`-I -S`: the package, as /var/task, and the standard
  library alone on sys.path) running `bench/aws_cold.py`: importing the
  handler module, its first invocation (building the container's backend:
  the lean DynamoDB client, loading functions/, reading the schema and env
  vars; then the work), and the two together. http: a mutation; ws: `$connect`;
  stream: a batch with one mutation's records. Medians over the runs.
- cold_boto3_client_ms: what botocore's client alone would cost, in a
  fresh process too: `import boto3` (the package's) and one DynamoDB client
  (the Lambdas use runtime/aws/dynamodb_client.py instead).
- cold_file_put_ms / cold_file_put_boto3_ms / cold_file_put_ratio: what a
  container's first file adds to its call, in a fresh process of the
  package with the handlers' modules imported: making the S3 client and
  the file store's first put (PutObject of a 5-byte blob to moto's S3
  server on loopback), through the Lambdas' S3 client
  (runtime/aws/s3_client.py) and through botocore's; medians.
- http_mutation_aws_p50_ms / http_mutation_dev_p50_ms / ..._ratio: warm
  mutations over HTTP with one kept-alive connection, through the local
  API Gateway harness (HTTP Lambda, DynamoDB Local) and through the dev
  server (SQLite); plus inprocess_mutation_dynamodb_p50_ms, the same
  mutation through `Executor.call` on DynamoDB Local, which separates the
  store's share from the shell's.
- stream_push_p50_ms / stream_push_p99_ms: write-to-push through the stream
  path: a watcher's socket on the harness; a mutation over HTTP; until the
  watcher has the Transition with it (DynamoDB Local's stream, the poller,
  the stream Lambda refreshing the query, the Management API post).
- stream_fanout_<k>_p50_ms: write-to-push through the stream path as
  above, with STREAM_FANOUT_CLIENTS sockets watching the query: the time
  until the last of them has the write (one refresh, k pushes).
- socket_push_p50_ms: the same write sent over another client's socket (the
  WebSocket Lambda answers the writer and re-runs only the writer's own
  queries; the watcher's push comes through the stream).
- socket_mutation_dynamodb_calls: the DynamoDB requests one such mutation
  makes in the WebSocket Lambda (one watcher subscribed elsewhere), counted
  in-process on the store-backed sync (median over repeats);
  stream_write_dynamodb_calls: the requests the stream Lambda's work for
  that write makes (finding the watcher's query, re-running it, pushing);
  socket_write_dynamodb_calls: the two together, what the write costs.

Run: `python bench/aws.py [--quick] [--cold-only] [--package DIR]`
(--package: an already built package, e.g. build/lambda, with its app).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STREAM_FANOUT_CLIENTS = 32
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

from tests.aws.events import http_event, stream_event, websocket_event  # noqa: E402
from tests.support.aws import dynamodb_local_client  # noqa: E402
from tests.support.awslocal import start_aws_local  # noqa: E402
from tests.support.devserver import start_dev_server  # noqa: E402
from tests.support.dynamodb_local import running_dynamodb_local  # noqa: E402

APP = ROOT / "tests" / "integration" / "apps" / "chat"
COLD = ROOT / "bench" / "aws_cold.py"


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def progress(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


# ---- cold starts ------------------------------------------------------------------


def _push_schema(endpoint: str, table: str) -> None:
    from runtime.backend import Backend
    from runtime.store.dynamodb import DynamoDBStore, create_table

    client = dynamodb_local_client(endpoint)
    create_table(client, table)
    backend = Backend(DynamoDBStore(table, client=client), APP, admin_key=None)
    assert backend.reload().ok, backend.load_error
    backend.close()


def _stream_records(endpoint: str, table: str) -> tuple[list[dict[str, Any]], str]:
    """The stream records of one mutation (boto3's shape), and the stream ARN."""
    from runtime.backend import Backend
    from runtime.store.dynamodb import DynamoDBStore

    client = dynamodb_local_client(endpoint)
    streams = dynamodb_local_client(endpoint, "dynamodbstreams")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterators = {
        s["ShardId"]: streams.get_shard_iterator(
            StreamArn=arn, ShardId=s["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        for s in shards
    }
    backend = Backend(DynamoDBStore(table, client=client), APP, admin_key=None)
    backend.reload(push_schema=False)
    backend.executor.call("messages:send", {"channel": "cold", "body": "x"})
    records: list[dict[str, Any]] = []
    for it in iterators.values():
        records += streams.get_records(ShardIterator=it, Limit=1000)["Records"]
    return records, arn


def deployed_package(tmp: Path, built: Path | None) -> tuple[str, Path]:
    """(the Lambda's Python, the package folder): `built`, or infra/package.py's
    build with the chat app as its functions/."""
    sys.path.insert(0, str(ROOT / "infra"))
    import package  # infra/package.py
    from samtranslator.yaml_helper import yaml_parse

    python, _ = package.lambda_target(yaml_parse(package.TEMPLATE.read_text()))
    interpreter = package.lambda_interpreter(python)
    if interpreter is None:
        raise SystemExit(f"no python{python} here: the cold figures run the package on it")
    if built is not None:
        return interpreter, built.resolve()
    dest = tmp / "lambda"
    progress("building the Lambda package (infra/package.py)")
    package.main(["--dest", str(dest), "--functions", str(APP)])
    return interpreter, dest


def cold_starts(endpoint: str, runs: int, tmp: Path, code: tuple[str, Path]) -> None:
    python, task_root = code
    table = f"cold{uuid.uuid4().hex[:8]}"
    _push_schema(endpoint, table)
    records, arn = _stream_records(endpoint, table)
    events = {
        "http": [
            http_event(
                "POST",
                "/api/mutation",
                {"path": "messages:send", "args": {"channel": "cold", "body": "b"}},
            )
        ],
        "ws": [websocket_event("$connect", uuid.uuid4().hex) for _ in range(2)],
        "stream": [stream_event(records, arn)],
    }
    env = {
        **os.environ,
        "PYCONVEX_TABLE": table,
        "PYCONVEX_FUNCTIONS": str(task_root / "functions"),
        "LAMBDA_TASK_ROOT": str(task_root),
        "PYCONVEX_WS_ENDPOINT": "http://127.0.0.1:9",  # nothing subscribes: never posted to
        # As template.yaml deploys them (never called by these events: no file,
        # no scheduled job; their clients are what a cold start may pay for).
        "PYCONVEX_FILES_BUCKET": "pyconvex-bench-files",
        "PYCONVEX_JOBS_QUEUE_URL": "http://127.0.0.1:9/000000000000/jobs.fifo",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "pyconvex-bench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    floor = []
    for _ in range(runs):
        done = subprocess.run(
            [python, "-I", "-S", "-c", _BOTO3_FLOOR, str(task_root)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        floor.append(float(done.stdout.strip()))
    figure("cold_boto3_client_ms", statistics.median(floor), "ms")
    cold_file_puts(env, runs, code)
    for kind, kind_events in events.items():
        path = tmp / f"{kind}.json"
        path.write_text(json.dumps(kind_events))
        imports, firsts = [], []
        for _ in range(runs):
            done = subprocess.run(
                [python, "-I", "-S", str(COLD), kind, str(path), str(task_root)],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=False,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith('{"interp')]
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"cold start of {kind} failed:\n{done.stdout}\n{done.stderr}")
            result = json.loads(lines[-1])
            imports.append(result["import_ms"])
            firsts.append(result["first_ms"])
        figure(f"cold_{kind}_import_ms", statistics.median(imports), "ms")
        figure(f"cold_{kind}_first_ms", statistics.median(firsts), "ms")
        figure(
            f"cold_{kind}_ms",
            statistics.median([a + b for a, b in zip(imports, firsts, strict=True)]),
            "ms",
        )


def cold_file_puts(env: dict[str, str], runs: int, code: tuple[str, Path]) -> None:
    """A container's first file: the file store's first put (a 5-byte blob) in
    a fresh process of the package, through the Lambdas' S3 client and
    through botocore's, against moto's S3 server on loopback."""
    import boto3

    from runtime.emulator.s3 import running_s3

    python, task_root = code
    with running_s3(localstack=False) as s3:
        bucket = f"cold{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=s3,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=bucket)
        times: dict[str, list[float]] = {"lean": [], "boto3": []}
        for _ in range(runs):
            for client, spent in times.items():
                done = subprocess.run(
                    [python, "-I", "-S", "-c", _FIRST_PUT, str(task_root), client, bucket],
                    capture_output=True,
                    text=True,
                    env={**env, "AWS_ENDPOINT_URL_S3": s3},
                    check=False,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"the first put ({client}) failed:\n{done.stderr}")
                spent.append(float(done.stdout.strip()))
    lean, botocore = statistics.median(times["lean"]), statistics.median(times["boto3"])
    figure("cold_file_put_ms", lean, "ms")
    figure("cold_file_put_boto3_ms", botocore, "ms")
    figure("cold_file_put_ratio", lean / botocore, "x")


_FIRST_PUT = """
import sys, time
sys.path.insert(0, sys.argv[1])
import runtime.aws.backend  # imported by every handler before any call
from runtime.aws.clients import LazyClient
from runtime.files.port import new_key
from runtime.files.s3 import S3BlobStore
t = time.perf_counter()
if sys.argv[2] == "lean":
    client = LazyClient("s3")
else:
    import boto3
    client = boto3.session.Session().client("s3")
S3BlobStore(client, sys.argv[3], prefix="api/storage/").put(new_key(), [b"hello"], "text/plain")
assert (sys.argv[2] == "lean") == (type(getattr(client, "_client", None)).__name__ == "S3Client")
print((time.perf_counter() - t) * 1000)
"""


_BOTO3_FLOOR = """
import sys, time
sys.path.insert(0, sys.argv[1])
t = time.perf_counter()
import boto3
boto3.session.Session().client("dynamodb")
print((time.perf_counter() - t) * 1000)
"""


# ---- warm HTTP mutations -------------------------------------------------------------


def http_mutations(url: str, n: int) -> list[float]:
    session = requests.Session()
    body = {"path": "messages:send", "args": {"channel": "warm", "body": "w"}}
    for _ in range(5):  # warm-up
        session.post(url + "/api/mutation", json=body, timeout=30).raise_for_status()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = session.post(url + "/api/mutation", json=body, timeout=30)
        times.append((time.perf_counter() - t) * 1000)
        assert r.json()["status"] == "success", r.text
    return times


def inprocess_mutations(endpoint: str, n: int) -> list[float]:
    from runtime.backend import Backend
    from runtime.store.dynamodb import DynamoDBStore

    table = f"inproc{uuid.uuid4().hex[:8]}"
    _push_schema(endpoint, table)
    backend = Backend(
        DynamoDBStore(table, client=dynamodb_local_client(endpoint)), APP, admin_key=None
    )
    backend.reload(push_schema=False)
    times = []
    for _ in range(n + 5):
        t = time.perf_counter()
        assert backend.executor.call("messages:send", {"channel": "warm", "body": "w"}).ok
        times.append((time.perf_counter() - t) * 1000)
    return times[5:]


class _Inbox:
    """A Poster that keeps what it would send (no Management API here)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        self.sent.append(message)
        return True

    def close(self, connection_id: str) -> None:
        pass


def socket_mutation_calls(endpoint: str, n: int) -> tuple[list[int], list[int]]:
    """Per mutation: the WebSocket Lambda's requests, the stream Lambda's."""
    from runtime.database import Database
    from runtime.functions import load_functions
    from runtime.functions.executor import Executor
    from runtime.functions.platform_store import PlatformStore
    from runtime.store.dynamodb import DynamoDBStore
    from runtime.sync.stored import StoredSync

    table = f"calls{uuid.uuid4().hex[:8]}"
    _push_schema(endpoint, table)
    client = dynamodb_local_client(endpoint)
    streams = dynamodb_local_client(endpoint, "dynamodbstreams")
    store = DynamoDBStore(table, client=client, streams_client=streams)
    registry = load_functions(APP, namespace="_bench_calls")
    db = Database(PlatformStore(store))
    db.adopt_schema(registry.schema)
    sync = StoredSync(db, Executor(db, registry), store, _Inbox(), holder="bench")
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    client.meta.events.register("before-call.dynamodb", count)
    for conn in ("watcher", "writer"):
        sync.connect(conn)
        sync.receive(conn, json.dumps({"type": "Connect", "sessionId": conn, "connectionCount": 0}))
    watch = {"type": "Add", "queryId": 0, "udfPath": "messages:latest",
             "args": [{"channel": "calls", "n": 1.0}]}  # fmt: skip
    sync.receive(
        "watcher",
        json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                    "modifications": [watch]}),
    )  # fmt: skip
    position = store.read_changes(None, 1000).position
    socket, stream = [], []
    for i in range(n):
        mutation = {"type": "Mutation", "requestId": i, "udfPath": "messages:send",
                    "args": [{"channel": "calls", "body": f"c{i}"}]}  # fmt: skip
        calls[0] = 0
        sync.receive("writer", json.dumps(mutation))
        socket.append(calls[0])
        batch = store.read_changes(position, 1000)  # the stream's own client: not counted
        position = batch.position
        calls[0] = 0
        sync.on_changes(batch.changes)
        stream.append(calls[0])
    return socket, stream


# ---- write-to-push -----------------------------------------------------------------------


@contextlib.contextmanager
def _watch(url: str, channel: str) -> Iterator[ClientConnection]:
    with connect(url.replace("http", "ws", 1) + "/api/1.0.0/sync", open_timeout=10) as ws:
        _subscribe(ws, channel)
        yield ws


def _subscribe(ws: ClientConnection, channel: str) -> None:
    ws.send(json.dumps({"type": "Connect", "sessionId": uuid.uuid4().hex, "connectionCount": 0}))
    ws.send(
        json.dumps(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [
                    {
                        "type": "Add",
                        "queryId": 0,
                        "udfPath": "messages:latest",
                        "args": [{"channel": channel, "n": 1.0}],
                    }
                ],
            }
        )
    )
    _until(ws, lambda m: m["type"] == "Transition" and m["endVersion"]["querySet"] == 1)


def _until(ws: ClientConnection, match: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if match(message):
            return message


def _has(body: str) -> Any:
    def match(m: dict[str, Any]) -> bool:
        return m["type"] == "Transition" and any(
            mod.get("value") == [body] for mod in m["modifications"]
        )

    return match


def stream_pushes(url: str, n: int, clients: int = 1) -> list[float]:
    """HTTP writes watched by `clients` sockets: for each, the time until the
    last of them has it (the stream Lambda's refresh, then a push to each)."""
    session = requests.Session()
    channel = f"fan{uuid.uuid4().hex[:6]}"
    times = []
    with contextlib.ExitStack() as stack:
        watchers = [stack.enter_context(_watch(url, channel)) for _ in range(clients)]
        for i in range(n):
            body = f"f{i}"
            t = time.perf_counter()
            r = session.post(
                url + "/api/mutation",
                json={"path": "messages:send", "args": {"channel": channel, "body": body}},
                timeout=30,
            )
            assert r.json()["status"] == "success"
            for ws in watchers:
                _until(ws, _has(body))
            times.append((time.perf_counter() - t) * 1000)
    return times


def socket_pushes(url: str, n: int) -> list[float]:
    channel = f"sock{uuid.uuid4().hex[:6]}"
    times = []
    with (
        _watch(url, channel) as ws,
        connect(url.replace("http", "ws", 1) + "/api/1.0.0/sync", open_timeout=10) as writer,
    ):
        writer.send(
            json.dumps({"type": "Connect", "sessionId": uuid.uuid4().hex, "connectionCount": 0})
        )
        for i in range(n):
            body = f"s{i}"
            t = time.perf_counter()
            writer.send(
                json.dumps(
                    {
                        "type": "Mutation",
                        "requestId": i,
                        "udfPath": "messages:send",
                        "args": [{"channel": channel, "body": body}],
                    }
                )
            )
            _until(ws, _has(body))
            times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (under a minute)")
    parser.add_argument("--cold-only", action="store_true", help="the cold figures alone")
    parser.add_argument(
        "--runs", type=int, default=None, help="fresh processes per handler (default 7, quick 3)"
    )
    parser.add_argument(
        "--package", type=Path, default=None, help="a built Lambda package (default: build one)"
    )
    options = parser.parse_args()
    runs, n = (3, 40) if options.quick else (7, 200)
    with tempfile.TemporaryDirectory() as tmp_name, running_dynamodb_local() as endpoint:
        tmp = Path(tmp_name)
        code = deployed_package(tmp, options.package)
        runs = options.runs or runs
        progress(f"cold starts: {runs} fresh processes per handler, as deployed")
        cold_starts(endpoint, runs, tmp, code)
        if options.cold_only:
            return
        progress(f"warm mutations: {n} each, harness / dev server / in-process")
        harness = start_aws_local(APP, tmp / "aws", table="bench", dynamodb_endpoint=endpoint)
        dev = start_dev_server(APP, tmp / "dev")
        try:
            aws_times = http_mutations(harness.url, n)
            dev_times = http_mutations(dev.url, n)
            local_times = inprocess_mutations(endpoint, n)
            aws_p50, dev_p50 = statistics.median(aws_times), statistics.median(dev_times)
            figure("http_mutation_aws_p50_ms", aws_p50, "ms")
            figure("http_mutation_aws_p99_ms", percentile(aws_times, 0.99), "ms")
            figure("http_mutation_dev_p50_ms", dev_p50, "ms")
            figure("http_mutation_aws_dev_ratio", aws_p50 / dev_p50, "x")
            figure("inprocess_mutation_dynamodb_p50_ms", statistics.median(local_times), "ms")
            progress(f"write-to-push: {n // 2} writes each, stream path / socket path")
            pushes = stream_pushes(harness.url, n // 2)
            figure("stream_push_p50_ms", statistics.median(pushes), "ms")
            figure("stream_push_p99_ms", percentile(pushes, 0.99), "ms")
            fan = stream_pushes(harness.url, n // 4, STREAM_FANOUT_CLIENTS)
            figure(f"stream_fanout_{STREAM_FANOUT_CLIENTS}_p50_ms", statistics.median(fan), "ms")
            sockets = socket_pushes(harness.url, n // 2)
            figure("socket_push_p50_ms", statistics.median(sockets), "ms")
            figure("socket_push_p99_ms", percentile(sockets, 0.99), "ms")
            socket, stream = socket_mutation_calls(endpoint, 10 if options.quick else 30)
            figure("socket_mutation_dynamodb_calls", statistics.median(socket), "calls")
            figure("stream_write_dynamodb_calls", statistics.median(stream), "calls")
            total = [a + b for a, b in zip(socket, stream, strict=True)]
            figure("socket_write_dynamodb_calls", statistics.median(total), "calls")
        finally:
            harness.stop()
            dev.stop()


if __name__ == "__main__":
    main()
