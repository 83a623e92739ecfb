"""The admin key on AWS lives in Secrets Manager (template.yaml's
AdminKeySecret): the HTTP Lambda reads it once per container through
Powertools, the app's functions never see it in os.environ, a weak or
unreadable key stops the container with a clear error, and the CLI side
(`stack_admin_key`) reads it from a deployed stack.

Secrets Manager runs under moto (no real one runs here); DynamoDB is
DynamoDB Local; the handler gets API Gateway's events."""

from __future__ import annotations

import datetime
import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.aws.deploy import ADMIN_KEY_OUTPUT, stack_admin_key
from runtime.aws.settings import Settings, SettingsError
from runtime.backend import AdminKeyError, Backend
from runtime.store.dynamodb import DynamoDBStore, create_table
from tests.aws.events import LambdaContext, http_event
from tests.support.aws import dynamodb_local_client, http_lambda, secrets_manager
from tests.support.awslocal import aws_local

ROOT = Path(__file__).resolve().parents[2]

ENV_DUMP = '''
import os

from runtime import query


@query(args={})
def dump(ctx, args):
    """Everything a function can see of its process's environment."""
    return [[name, value] for name, value in sorted(os.environ.items())]
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The example app plus a query that returns os.environ."""
    functions = tmp_path / "functions"
    shutil.copytree(ROOT / "functions", functions, ignore=shutil.ignore_patterns("__pycache__"))
    (functions / "envdump.py").write_text(ENV_DUMP)
    return functions


@pytest.fixture
def table(dynamodb_local_endpoint: str, app: Path) -> Iterator[str]:
    name = f"s{uuid.uuid4().hex[:12]}"
    client = dynamodb_local_client(dynamodb_local_endpoint)
    create_table(client, name)
    assert Backend(DynamoDBStore(name, client=client), app, admin_key=None).reload().ok
    yield name
    client.delete_table(TableName=name)


def call(handler: Any, path: str, body: Any, key: str | None = None) -> tuple[int, Any]:
    headers = {"authorization": f"Convex {key}"} if key is not None else {}
    response = handler(http_event("POST", path, body, headers=headers), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def admin_call(handler: Any, key: str) -> int:
    """An internal function through the admin route (the CLI's `run`): 200 or 401."""
    status, _ = call(handler, "/api/function", {"path": "bank:close", "args": {"owner": "x"}}, key)
    return status


@pytest.mark.dynamodb_local
def test_the_key_is_read_once_per_container_and_functions_do_not_see_it(
    dynamodb_local_endpoint: str, table: str, app: Path
) -> None:
    key, rotated = secrets.token_hex(32), secrets.token_urlsafe(48)
    with secrets_manager() as sm:
        arn = sm.create_secret(Name=f"key-{table}", SecretString=key)["ARN"]
        with http_lambda(dynamodb_local_endpoint, table, app, PYCONVEX_ADMIN_KEY_SECRET=arn) as h:
            assert admin_call(h, key) == 200
            assert admin_call(h, secrets.token_hex(32)) == 401
            assert admin_call(h, key + " ") == 401, "compared exactly, nothing trimmed"

            status, body = call(h, "/api/query", {"path": "envdump:dump", "args": {}})
            assert status == 200 and body["status"] == "success"
            seen = dict(body["value"])
            assert seen["PYCONVEX_ADMIN_KEY_SECRET"] == arn, "where the key is, not the key"
            assert "PYCONVEX_ADMIN_KEY" not in seen
            assert not [name for name, value in seen.items() if key in value]

            # The container read the secret at its start and keeps that key.
            sm.put_secret_value(SecretId=arn, SecretString=rotated)
            assert admin_call(h, key) == 200
            assert admin_call(h, rotated) == 401
        # A new container reads the secret as it is now.
        with http_lambda(dynamodb_local_endpoint, table, app, PYCONVEX_ADMIN_KEY_SECRET=arn) as h:
            assert admin_call(h, rotated) == 200
            assert admin_call(h, key) == 401


@pytest.mark.dynamodb_local
def test_a_function_without_the_secret_has_no_admin_access(
    dynamodb_local_endpoint: str, table: str, app: Path
) -> None:
    """The ws and stream functions get no key (nor the permission to read
    it): nothing passes as an admin there, the old variable included."""
    old = secrets.token_hex(32)
    with http_lambda(dynamodb_local_endpoint, table, app, PYCONVEX_ADMIN_KEY=old) as h:
        from runtime.aws.backend import lambda_backend

        backend, settings = lambda_backend()
        assert settings.admin_key is None and backend.admin_key is None
        for key in (old, "", " "):
            assert admin_call(h, key) == 401, key
        status, _ = call(h, "/api/query", {"path": "bank:total", "args": {}})
        assert status == 200, "everything else is served"


def test_settings_read_the_secret_named_in_the_environment() -> None:
    key = secrets.token_urlsafe(40)
    with secrets_manager() as sm:
        arn = sm.create_secret(Name="pyconvex-admin", SecretString=key)["ARN"]
        env = {
            "PYCONVEX_TABLE": "t",
            "PYCONVEX_ADMIN_KEY_SECRET": arn,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        settings = Settings.from_env(env)
    assert settings.admin_key == key
    assert key not in repr(settings), "the key stays out of reprs (tracebacks, logs)"


def test_an_unreadable_secret_stops_the_container_saying_why() -> None:
    with secrets_manager():
        missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
        env = {"PYCONVEX_TABLE": "t", "PYCONVEX_ADMIN_KEY_SECRET": missing}
        with pytest.raises(SettingsError, match=r"nope-AbCdEf.*secretsmanager:GetSecretValue"):
            Settings.from_env(env)


@pytest.mark.parametrize("weak", ["", "short", "a" * 64, "spaces in the key " * 4])
def test_a_weak_key_in_the_secret_is_refused_at_start(weak: str) -> None:
    env = {"PYCONVEX_TABLE": "t", "PYCONVEX_ADMIN_KEY_SECRET": "arn:secret"}
    with pytest.raises(AdminKeyError, match="the admin key in the secret arn:secret"):
        Settings.from_env(env, get_secret=lambda arn: weak)


def test_the_harness_key_file_is_read_exactly(tmp_path: Path) -> None:
    """`aws-local` names its <data>/admin_key file (PYCONVEX_ADMIN_KEY_FILE)."""
    key = secrets.token_hex(32)
    path = tmp_path / "admin_key"
    path.write_text(key + "\n")
    env = {"PYCONVEX_TABLE": "t", "PYCONVEX_ADMIN_KEY_FILE": str(path)}
    assert Settings.from_env(env).admin_key == key
    path.write_text("  " + key + "\n")
    with pytest.raises(AdminKeyError, match=str(path)):
        Settings.from_env(env)


def test_the_cli_reads_a_deployed_stacks_key() -> None:
    """`stack_admin_key`: the stack's AdminKeySecretArn output, then the secret
    (CloudFormation's answer checked by botocore's Stubber against the
    service model; Secrets Manager under moto)."""
    import boto3
    from botocore.stub import Stubber

    key = secrets.token_hex(32)
    with secrets_manager() as sm:
        arn = sm.create_secret(Name="pyconvex-admin-key", SecretString=key)["ARN"]
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        stack = {
            "StackName": "app",
            "CreationTime": datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
            "StackStatus": "CREATE_COMPLETE",
            "Outputs": [{"OutputKey": ADMIN_KEY_OUTPUT, "OutputValue": arn}],
        }
        with Stubber(cloudformation) as stub:
            stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "app"})
            assert stack_admin_key("app", cloudformation, sm) == key


@pytest.mark.dynamodb_local
def test_functions_behind_the_local_harness_do_not_see_the_key(
    dynamodb_local_endpoint: str, app: Path, tmp_path: Path
) -> None:
    """`python -m runtime aws-local` runs the handlers in its own process and
    names its key file, as the template names the secret."""
    import requests

    with aws_local(
        app, tmp_path / "data", table=f"s{uuid.uuid4().hex[:12]}",
        dynamodb_endpoint=dynamodb_local_endpoint,
    ) as harness:  # fmt: skip
        key = harness.admin_key
        answer = requests.post(
            f"{harness.url}/api/query", json={"path": "envdump:dump", "args": {}}, timeout=30
        ).json()
        seen = dict(answer["value"])
        assert "PYCONVEX_ADMIN_KEY" not in seen
        assert seen["PYCONVEX_ADMIN_KEY_FILE"].endswith("admin_key")
        assert not [name for name, value in seen.items() if key in value]
        internal = {"path": "bank:close", "args": {"owner": "x"}}
        for given, status in ((key, 200), (secrets.token_hex(32), 401)):
            r = requests.post(
                f"{harness.url}/api/function",
                json=internal,
                headers={"Authorization": f"Convex {given}"},
                timeout=30,
            )
            assert r.status_code == status, r.text
