"""`python -m runtime` / `pyconvex`: the command line.

    dev                      run the local backend (see runtime/local/dev.py)
    aws-local                run the Lambda handlers behind a local API Gateway, on
                             DynamoDB Local (see runtime/emulator/main.py)
    deploy --stack S         push the schema to a deployed stack's table (runtime/aws/deploy.py)
    run FN [ARGS_JSON]       call any function (internal ones too) and print its result
    functions                the loaded functions with their argument and result types
    logs [--follow]          the call log (the last calls; then each as it happens)
    dashboard [--with-key]   print the dashboard's URL
    codegen                  write typed client bindings to <functions>/_generated
    init DIR                 a new app in DIR/functions from a template
    env list|get|set|remove  the backend's environment variables
    export --path FILE.zip   a snapshot of every table
    import FILE --table T    load documents (.jsonl, or a snapshot .zip)

Every command but `dev`, `aws-local`, `codegen` and `init` talks to a running
backend at --url, else $PYCONVEX_URL, else the URL `dev` wrote to .env.local,
else http://127.0.0.1:3210, with the admin key from --admin-key,
$PYCONVEX_ADMIN_KEY, the key file .env.local names, or <--data>/admin_key.

In ARGS_JSON an integer literal (`5`) is an int64 and `5.0` a float64, as in
Python's own json module (Convex's CLI sends every number as a float64).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runtime.functions.environment import EnvVarError
from runtime.functions.environment import check_name as check_env_name
from runtime.functions.environment import check_value as check_env_value
from runtime.values import InvalidValueError, decode_json, encode_json, encode_plain_json, loads

from .client import BackendClient, CliError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyconvex", description="The pyconvex backend and its tools.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run the local backend on 127.0.0.1")
    dev.add_argument(
        "--functions", type=Path, default=Path("functions"), help="default: functions/"
    )
    dev.add_argument("--port", type=int, default=3210, help="HTTP API and sync (default 3210)")
    dev.add_argument("--site-port", type=int, default=3211, help="HTTP actions (default 3211)")
    dev.add_argument("--data", type=Path, default=Path(".data"), help="default: .data/")
    dev.add_argument("--prod", action="store_true", help="redact errors as production does")
    dev.add_argument(
        "--static",
        type=Path,
        metavar="DIR",
        help="serve a built web app from DIR at the API's origin (http://127.0.0.1:3210/)",
    )
    dev.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env.local"),
        metavar="FILE",
        help="where to write the URL and the admin key's place for the other commands "
        "(default .env.local)",
    )
    dev.add_argument("--no-env-file", action="store_true", help="write no .env.local")
    dev.add_argument(
        "--no-codegen",
        action="store_true",
        help="do not regenerate <functions>/_generated on every load",
    )

    aws = sub.add_parser(
        "aws-local", help="run the Lambda handlers behind a local API Gateway on DynamoDB Local"
    )
    aws.add_argument(
        "--functions", type=Path, default=Path("functions"), help="default: functions/"
    )
    aws.add_argument("--port", type=int, default=3210, help="HTTP, WebSocket and Management API")
    aws.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    aws.add_argument("--table", default="pyconvex", help="the DynamoDB table (default pyconvex)")
    aws.add_argument(
        "--dynamodb-endpoint",
        metavar="URL",
        help="a running DynamoDB (default: $AWS_ENDPOINT_URL_DYNAMODB, $AWS_ENDPOINT_URL, "
        "else DynamoDB Local is started)",
    )
    aws.add_argument("--localstack", action="store_true", help="use LocalStack's S3 and DynamoDB")
    aws.add_argument(
        "--data", type=Path, default=Path(".data-aws"), help="the admin key (default .data-aws/)"
    )
    aws.add_argument("--prod", action="store_true", help="redact errors as production does")
    aws.add_argument(
        "--stream-start",
        choices=["LATEST", "TRIM_HORIZON"],
        default="LATEST",
        help="where the stream Lambda starts reading (default LATEST)",
    )

    deploy = sub.add_parser(
        "deploy", help="push the app's schema to a deployed table (builds new indexes)"
    )
    deploy.add_argument(
        "--functions", type=Path, default=Path("functions"), help="default: functions/"
    )
    where = deploy.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the CloudFormation stack (its TableName output)")
    where.add_argument("--table", help="the DynamoDB table")

    def remote(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument(
            "--url", help="backend URL (default $PYCONVEX_URL or http://127.0.0.1:3210)"
        )
        cmd.add_argument("--admin-key", help="default $PYCONVEX_ADMIN_KEY or <data>/admin_key")
        cmd.add_argument(
            "--data",
            type=Path,
            default=Path(".data"),
            help="where the dev backend keeps its admin key",
        )

    run = sub.add_parser("run", help="call a function and print its result")
    run.add_argument("function", help="e.g. bank:open")
    run.add_argument(
        "args", nargs="?", default="{}", help='a JSON object, e.g. \'{"owner": "ann"}\''
    )
    run.add_argument(
        "--identity",
        help='run as this user (admin key required): a JSON object with "subject" and '
        '"issuer", e.g. \'{"subject": "user-1", "issuer": "https://issuer.example"}\'',
    )
    remote(run)

    remote(sub.add_parser("functions", help="list the functions with their validators"))
    logs = sub.add_parser("logs", help="print the call log")
    logs.add_argument("--follow", "-f", action="store_true", help="then each call as it happens")
    logs.add_argument("--limit", "-n", type=int, help="only the last N calls")
    remote(logs)
    dash = sub.add_parser("dashboard", help="print the dashboard's URL")
    dash.add_argument(
        "--with-key", action="store_true", help="with the admin key in the URL's fragment"
    )
    remote(dash)
    gen = sub.add_parser("codegen", help="write typed client bindings (api.d.ts, dataModel.d.ts)")
    gen.add_argument(
        "--functions", type=Path, default=Path("functions"), help="default: functions/"
    )
    gen.add_argument("--out", type=Path, help="default: <functions>/_generated")
    init = sub.add_parser("init", help="create a new app from a template")
    init.add_argument("directory", type=Path, help="the new app's folder")

    env = sub.add_parser("env", help="environment variables")
    env_sub = env.add_subparsers(dest="env_command", required=True, metavar="ACTION")
    remote(env_sub.add_parser("list", help="print every variable"))
    get = env_sub.add_parser("get", help="print one variable")
    get.add_argument("name")
    remote(get)
    set_ = env_sub.add_parser("set", help="set a variable")
    set_.add_argument("name")
    set_.add_argument("value")
    remote(set_)
    remove = env_sub.add_parser("remove", help="remove a variable")
    remove.add_argument("name")
    remote(remove)

    export = sub.add_parser("export", help="write a snapshot of every table to a .zip")
    export.add_argument("--path", type=Path, required=True, help="the .zip to write")
    export.add_argument(
        "--include-files",
        action="store_true",
        help="also write the files (_storage/documents.jsonl and each file's bytes), as Convex's",
    )
    remote(export)

    imp = sub.add_parser("import", help="import documents into a table (all or nothing)")
    imp.add_argument(
        "file", type=Path, help="a .jsonl file (one document per line) or a snapshot .zip"
    )
    imp.add_argument("--table", help="the table to import into (required for .jsonl)")
    mode = imp.add_mutually_exclusive_group()
    mode.add_argument("--replace", action="store_true", help="delete the table's documents first")
    mode.add_argument("--append", action="store_true", help="add to the table's documents")
    remote(imp)
    return p


def _client(ns: argparse.Namespace) -> BackendClient:
    return BackendClient.from_options(ns.url, ns.admin_key, ns.data)


def _cmd_run(ns: argparse.Namespace) -> int:
    try:
        args = loads(ns.args, int64_literals=True)
    except json.JSONDecodeError as e:
        raise CliError(f"ARGS_JSON is not valid JSON: {e}") from None
    except InvalidValueError as e:
        raise CliError(f"ARGS_JSON holds something that is not a Convex value: {e}") from None
    if not isinstance(args, dict):
        raise CliError('ARGS_JSON must be a JSON object, e.g. \'{"owner": "ann"}\'')
    wire_args = encode_json(args)
    client = _client(ns)
    if ns.identity is not None:
        client.acting_as = _identity_option(ns.identity)
        if not client.admin_key:
            raise CliError("--identity needs the admin key (--admin-key or $PYCONVEX_ADMIN_KEY)")
    try:
        answer = client.json(
            "POST",
            "/api/function",
            {"path": ns.function, "args": wire_args, "format": "convex_encoded_json"},
        )
    except CliError as e:
        if client.admin_key or "Could not find public function" not in str(e):
            raise
        raise CliError(
            f"{e}\nthe admin key is missing, and internal functions need it: pass --admin-key, "
            "set $PYCONVEX_ADMIN_KEY, or run from the folder where `dev` wrote .env.local"
        ) from None
    for line in answer.get("logLines", []):
        print(line, file=sys.stderr)
    if answer.get("status") == "success":
        _print_value(decode_json(answer["value"]))
        return 0
    message = answer.get("errorMessage", "the function failed")
    if "errorData" in answer:
        message += f"\nerrorData: {json.dumps(encode_plain_json(decode_json(answer['errorData'])))}"
    print(message, file=sys.stderr)
    return 1


def _identity_option(text: str) -> dict[str, Any]:
    """`--identity`: the user identity a function sees (`get_user_identity()`);
    `tokenIdentifier` defaults to "<issuer>|<subject>" on the server."""
    try:
        identity = json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"--identity is not valid JSON: {e}") from None
    if not isinstance(identity, dict) or not all(
        isinstance(identity.get(k), str) and identity.get(k) for k in ("subject", "issuer")
    ):
        raise CliError(
            '--identity must be a JSON object with string "subject" and "issuer", e.g. '
            '\'{"subject": "user-1", "issuer": "https://issuer.example"}\''
        )
    return identity


def _print_value(value: Any) -> None:
    print(json.dumps(encode_plain_json(value), indent=2, ensure_ascii=False))


def _cmd_env(ns: argparse.Namespace) -> int:
    client = _client(ns)
    if ns.env_command == "list":
        for name, value in sorted(client.json("GET", "/api/admin/env")["variables"].items()):
            print(f"{name}={value}")
        return 0
    if ns.env_command == "get":
        variables = client.json("GET", "/api/admin/env")["variables"]
        if ns.name not in variables:
            print(f"{ns.name} is not set", file=sys.stderr)
            return 1
        print(variables[ns.name])
        return 0
    value = ns.value if ns.env_command == "set" else None
    if value is not None:
        try:  # the server checks again; here a bad name or value fails with no request
            check_env_name(ns.name)
            check_env_value(ns.name, value)
        except EnvVarError as e:
            raise CliError(f"{e.code}: {e.message}") from None
    client.json("POST", "/api/admin/env", {"changes": {ns.name: value}})
    print(f"{'set' if value is not None else 'removed'} {ns.name}", file=sys.stderr)
    return 0


def _cmd_deploy(ns: argparse.Namespace) -> int:
    from runtime.aws.deploy import push_schema, search_engine, stack_table, sync_stack_crons
    from runtime.aws.settings import record_stack_urls
    from runtime.store.port import StoreError

    try:
        table = ns.table or stack_table(ns.stack)
        count = push_schema(table, ns.functions, search=search_engine(ns.stack, table))
        url = record_stack_urls(ns.stack, table) if ns.stack else None
        crons = sync_stack_crons(ns.stack, ns.functions) if ns.stack else None
    except (RuntimeError, StoreError) as e:
        raise CliError(str(e)) from None
    print(f"\npushed the schema of {count} functions to table {table}")
    if url:
        print(f"client URL: {url}  (new ConvexClient(url) / ConvexClient(url) in Python)")
        print(f"dashboard: {url}/_dashboard  (admin key: make admin-key STACK={ns.stack})")
    if crons:
        print(crons)
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        if ns.command == "dev":
            from runtime.local.dev import DevOptions, run_dev

            return run_dev(
                DevOptions(
                    ns.functions,
                    ns.data,
                    ns.port,
                    ns.site_port,
                    prod=ns.prod,
                    static=ns.static,
                    env_file=None if ns.no_env_file else ns.env_file,
                    codegen=not ns.no_codegen,
                )
            )
        if ns.command == "aws-local":
            from runtime.emulator.main import AwsLocalOptions, run_aws_local

            return run_aws_local(
                AwsLocalOptions(
                    functions=ns.functions,
                    data=ns.data,
                    port=ns.port,
                    host=ns.host,
                    table=ns.table,
                    dynamodb_endpoint=ns.dynamodb_endpoint,
                    localstack=ns.localstack,
                    prod=ns.prod,
                    stream_start=ns.stream_start,
                )
            )
        if ns.command == "deploy":
            return _cmd_deploy(ns)
        if ns.command == "run":
            return _cmd_run(ns)
        if ns.command == "env":
            return _cmd_env(ns)
        if ns.command in ("functions", "logs", "dashboard", "codegen", "init"):
            from . import dev_cmds

            if ns.command == "codegen":
                return dev_cmds.codegen(ns.functions, ns.out)
            if ns.command == "init":
                return dev_cmds.init(ns.directory)
            if ns.command == "functions":
                return dev_cmds.functions(_client(ns))
            if ns.command == "logs":
                return dev_cmds.logs(_client(ns), follow=ns.follow, limit=ns.limit)
            return dev_cmds.dashboard(_client(ns), with_key=ns.with_key)
        from . import snapshot_cmds

        if ns.command == "export":
            return snapshot_cmds.export(_client(ns), ns.path, include_files=ns.include_files)
        return snapshot_cmds.import_(
            _client(ns),
            ns.file,
            ns.table,
            "replace" if ns.replace else "append" if ns.append else None,
        )
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
