"""`python -m runtime aws-local`: the AWS shell on one machine.

The three Lambda handlers (HTTP, WebSocket, stream) run in this process,
unchanged, behind a local API Gateway (`gateway.py`) and a local event
source mapping on the table's stream (`streams.py`), on DynamoDB Local, or
any DynamoDB endpoint given. What a deploy does is done once at start:
the table is created if missing, the app's schema pushed and the
deployment's URL (the gateway's) recorded for the functions; the handlers
then adopt it, as on AWS (so a change to the functions needs a restart).
Files' bytes go to an S3 bucket (`s3.py`: moto's S3 server unless one is
given), created at start. Scheduled functions and crons: the jobs queue and
schedule group live in a moto server of their own (`jobs.py`), which an
SQS poller and a schedule firer turn into invocations of the scheduler
handler, as Lambda and EventBridge Scheduler do. Search indexes live in a
local OpenSearch-compatible server (`opensearch.py`, in this process): the
Lambdas get its URL as OPENSEARCH_ENDPOINT (unsigned requests), the schema
push builds the indexes there, and the stream handler feeds it from the
stream poller's batches, as on AWS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runtime.aws.deploy import StackSchedules, push_schema, sync_crons
from runtime.aws.dispatch import queue_write
from runtime.aws.search import engine_for
from runtime.aws.settings import record_deployment_urls
from runtime.aws.stream_records import document_write
from runtime.backend import ADMIN_KEY_FILE, AdminKeyError, read_admin_key
from runtime.limits import SHUTDOWN_GRACE_SECONDS
from runtime.local.listen import BindError, listen
from runtime.store.dynamodb import DynamoDBStore, create_table

from .dynamodb_local import DynamoDBLocalMissing, running_dynamodb_local
from .functions import REGION, Handler, LambdaFunction, lazy_handler
from .gateway import LocalGateway
from .jobs import JobsAws, ScheduleFirer, SqsPoller, running_jobs_aws, setup_jobs
from .opensearch import LocalOpenSearch
from .s3 import S3Missing, files_env, running_s3, setup_bucket
from .server import uvicorn_server
from .streams import StreamPoller

__all__ = ["AwsLocalOptions", "Handlers", "dynamodb_endpoint", "run_aws_local"]

log = logging.getLogger("runtime.emulator")

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
"""DynamoDB Local wants signed requests, and keeps one set of tables per key."""


@dataclass
class Handlers:
    http: Handler = field(default_factory=lambda: lazy_handler("runtime.aws.http:handler"))
    ws: Handler = field(default_factory=lambda: lazy_handler("runtime.aws.ws:handler"))
    stream: Handler = field(default_factory=lambda: lazy_handler("runtime.aws.stream:handler"))
    scheduler: Handler = field(
        default_factory=lambda: lazy_handler("runtime.aws.scheduler:handler")
    )


@dataclass
class AwsLocalOptions:
    functions: Path = Path("functions")
    data: Path = Path(".data-aws")
    port: int = 3210
    host: str = "127.0.0.1"
    table: str = "pyconvex"
    files_bucket: str = "pyconvex-files"
    dynamodb_endpoint: str | None = None
    localstack: bool = False
    prod: bool = False
    stream_start: Literal["LATEST", "TRIM_HORIZON"] = "LATEST"


def dynamodb_endpoint(options: AwsLocalOptions, environ: Mapping[str, str]) -> str | None:
    """The DynamoDB to use: --dynamodb-endpoint, LocalStack's (--localstack),
    AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL; None: start DynamoDB Local."""
    if options.dynamodb_endpoint:
        return options.dynamodb_endpoint
    if options.localstack:
        from localstack_client.config import get_service_endpoint  # type: ignore[import-untyped]

        endpoint: str | None = get_service_endpoint("dynamodb")
        if not endpoint:
            raise SystemExit("localstack-client names no DynamoDB endpoint (see its settings)")
        return endpoint
    return environ.get("AWS_ENDPOINT_URL_DYNAMODB") or environ.get("AWS_ENDPOINT_URL") or None


def _aws_defaults() -> None:
    """Fake credentials when none are configured, a region when none is."""
    import boto3

    configured = (
        any(
            os.environ.get(v)
            for v in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")
        )
        or (Path.home() / ".aws" / "credentials").is_file()
    )
    if not configured:
        os.environ.update(FAKE_CREDENTIALS)
    if boto3.session.Session().region_name is None:
        os.environ["AWS_DEFAULT_REGION"] = REGION


@contextlib.contextmanager
def _dynamodb(options: AwsLocalOptions) -> Iterator[str]:
    endpoint = dynamodb_endpoint(options, os.environ)
    if endpoint:
        yield endpoint
        return
    try:
        with running_dynamodb_local() as started:
            print(f"started DynamoDB Local on {started}", file=sys.stderr, flush=True)
            yield started
    except DynamoDBLocalMissing as e:
        raise SystemExit(str(e)) from None


def _deploy(
    options: AwsLocalOptions, functions: Path, endpoint: str, url: str, jobs: JobsAws
) -> str:
    """Create the table if missing, push the schema, record the deployment's
    URL (the gateway's: `CONVEX_CLOUD_URL`, `CONVEX_SITE_URL`) and make the
    crons' schedules, as `python -m runtime deploy --stack` does; the
    stream's ARN."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint)
    create_table(client, options.table)
    search = engine_for(os.environ.get("OPENSEARCH_ENDPOINT"), options.table, sigv4=False)
    try:
        push_schema(options.table, functions, client=client, streams_client=streams, search=search)
    except RuntimeError as e:
        raise SystemExit(str(e)) from None
    store = DynamoDBStore(options.table, client=client, streams_client=streams)
    try:
        record_deployment_urls(store, url)
    finally:
        store.close()
    try:
        report = sync_crons(
            functions,
            StackSchedules(jobs.group, jobs.function_arn, jobs.role_arn),
            scheduler=boto3.client("scheduler", endpoint_url=jobs.endpoint),
        )
    except RuntimeError as e:
        raise SystemExit(str(e)) from None
    print(report, file=sys.stderr, flush=True)
    arn: str = client.describe_table(TableName=options.table)["Table"]["LatestStreamArn"]
    return arn


@contextlib.contextmanager
def _s3(options: AwsLocalOptions) -> Iterator[str]:
    try:
        with running_s3(options.localstack) as endpoint:
            yield endpoint
    except S3Missing as e:
        raise SystemExit(str(e)) from None


def _files_bucket(options: AwsLocalOptions, endpoint: str) -> dict[str, str]:
    """Create the files bucket (as the stack's `FilesBucket`); the Lambdas' env for it."""
    import boto3

    setup_bucket(boto3.client("s3", endpoint_url=endpoint), options.files_bucket)
    return files_env(endpoint, options.files_bucket)


def _document_or_queue_write(record: Mapping[str, Any]) -> bool:
    """The stream mapping's FilterCriteria (template.yaml): document writes,
    and writes of live job queue records (dispatched)."""
    return document_write(record) or queue_write(record)


def _scheduling(
    stack: contextlib.ExitStack, options: AwsLocalOptions, function: LambdaFunction
) -> JobsAws:
    """Start the harness's SQS and EventBridge Scheduler (`jobs.py`) and what
    delivers their work to the scheduler function; the Lambdas' settings."""
    import boto3

    endpoint = stack.enter_context(running_jobs_aws())
    jobs = setup_jobs(
        endpoint, queue=f"{options.table}-jobs", group=options.table, function=function.name
    )
    os.environ.update(jobs.env())
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    scheduler = boto3.client("scheduler", endpoint_url=endpoint)
    poller = SqsPoller(sqs, jobs, function)
    firer = ScheduleFirer(scheduler, sqs, jobs, {function.name: function})
    poller.start()
    stack.callback(poller.stop)
    firer.start()
    stack.callback(firer.stop)
    return jobs


def _reset_lambda_modules() -> None:
    """Close the handlers' cached backends (their stores, loops)."""
    for name in ("runtime.aws.http", "runtime.aws.backend"):
        module = sys.modules.get(name)
        reset: Any = getattr(module, "reset", None)
        if callable(reset):
            with contextlib.suppress(Exception):
                reset()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_aws_local(options: AwsLocalOptions, handlers: Handlers | None = None) -> int:
    handlers = handlers or Handlers()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "mangum", "opensearch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    functions = options.functions.resolve()
    if not functions.is_dir():
        raise SystemExit(f"no functions folder at {functions} (pass --functions DIR)")
    try:
        read_admin_key(options.data, create=True)  # made on the first run, kept after
    except AdminKeyError as e:
        raise SystemExit(f"cannot start: {e.message}") from None
    try:
        sock = listen(options.host, options.port, "gateway")
    except BindError as e:
        raise SystemExit(str(e)) from None
    url = f"http://{options.host}:{sock.getsockname()[1]}"
    _aws_defaults()
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C (uvicorn re-raises it)
    abandoned: list[tuple[str, float]] = []
    with contextlib.suppress(KeyboardInterrupt):
        _serve(options, handlers, functions, sock, url, abandoned)
    for name, seconds in abandoned:
        print(f"stopping: abandoned a {name} call (running {seconds:.1f} s)", file=sys.stderr)
    print("pyconvex aws-local stopped", file=sys.stderr, flush=True)
    if abandoned:  # their threads would keep the interpreter from exiting
        sys.stdout.flush()
        os._exit(0)
    return 0


def _serve(
    options: AwsLocalOptions,
    handlers: Handlers,
    functions: Path,
    sock: socket.socket,
    url: str,
    abandoned: list[tuple[str, float]],
) -> None:
    """Serve until stopped; `abandoned` receives the Lambda calls still
    running when the server stopped (past SHUTDOWN_GRACE_SECONDS)."""
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        endpoint = stack.enter_context(_dynamodb(options))
        s3 = stack.enter_context(_s3(options))
        os.environ.update(
            {
                "PYCONVEX_TABLE": options.table,
                "PYCONVEX_FUNCTIONS": str(functions),
                # Where the key is, as on AWS (there: a secret's ARN), never
                # the key: the app's functions see os.environ.
                "PYCONVEX_ADMIN_KEY_FILE": str((options.data / ADMIN_KEY_FILE).resolve()),
                "PYCONVEX_PROD": "1" if options.prod else "0",
                "PYCONVEX_WS_ENDPOINT": url,
                "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": endpoint,
            }
        )
        os.environ.update(_files_bucket(options, s3))
        # Always started: a thread and a socket, and a schema gaining a search
        # index needs it without a restart of anything but the harness.
        search = stack.enter_context(LocalOpenSearch("127.0.0.1"))
        os.environ.update({"OPENSEARCH_ENDPOINT": search.url, "OPENSEARCH_SIGV4": "false"})
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines locally
        scheduler_function = LambdaFunction("pyconvex-scheduler", handlers.scheduler, timeout=330)
        jobs = _scheduling(stack, options, scheduler_function)
        stream_arn = _deploy(options, functions, endpoint, url, jobs)
        gateway = LocalGateway(
            LambdaFunction("pyconvex-http", handlers.http),
            LambdaFunction("pyconvex-ws", handlers.ws),
        )
        stack.callback(_reset_lambda_modules)
        stack.callback(lambda: abandoned.extend(gateway.close(SHUTDOWN_GRACE_SECONDS)))
        import boto3

        poller = StreamPoller(
            boto3.client("dynamodbstreams", endpoint_url=endpoint),
            stream_arn,
            LambdaFunction("pyconvex-stream", handlers.stream, timeout=60),
            start=options.stream_start,
            keep=_document_or_queue_write,  # the template's FilterCriteria
        )
        poller.start()
        stack.callback(poller.stop)
        server = uvicorn_server(gateway)
        print(
            f"pyconvex aws-local ready: {url} (HTTP API, WebSocket {url.replace('http', 'ws', 1)}"
            f"/api/sync, Management API {url}/@connections), DynamoDB {endpoint} table "
            f"{options.table}, S3 {s3} bucket {options.files_bucket} and SQS + Scheduler "
            f"{jobs.endpoint} queue {jobs.queue_url} group {jobs.group}, OpenSearch {search.url}"
            f"{' (prod mode)' if options.prod else ''}",
            flush=True,
        )
        server.run(sockets=[sock])
