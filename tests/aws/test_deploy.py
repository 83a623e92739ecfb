"""`python -m runtime deploy`: the schema pushed once to a deployed table
(DynamoDB Local), the table found in a stack's outputs (CloudFormation's
response shape, under moto)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from runtime.aws.deploy import stack_table
from runtime.backend import Backend
from runtime.store.dynamodb import DynamoDBStore, create_table
from tests.support.aws import dynamodb_local_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.dynamodb_local
def test_deploy_pushes_the_schema_the_lambdas_then_serve(dynamodb_local_endpoint: str) -> None:
    table = f"dep{uuid.uuid4().hex[:10]}"
    client = dynamodb_local_client(dynamodb_local_endpoint)
    create_table(client, table)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": dynamodb_local_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    cmd = [sys.executable, "-m", "runtime", "deploy", "--table", table, "--functions", "functions"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"to table {table}" in done.stdout
    # A Lambda's backend adopts what was pushed: the index is there to query.
    served = Backend(DynamoDBStore(table, client=client), ROOT / "functions", admin_key=None)
    assert served.reload(push_schema=False).ok
    assert served.executor.call("bank:open", {"owner": "dee"}).ok
    assert served.executor.call("bank:balance", {"owner": "dee"}).value == 0
    missing = subprocess.run(
        [*cmd[:5], "nope" + table, "--functions", "functions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "error:" in missing.stderr
    client.delete_table(TableName=table)


def test_the_table_is_found_in_the_stack_outputs() -> None:
    """CloudFormation's DescribeStacks answer (botocore's Stubber checks the
    request and the response against the service model)."""
    import boto3
    from botocore.stub import Stubber

    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    stack = {
        "StackName": "app",
        "CreationTime": datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        "StackStatus": "CREATE_COMPLETE",
    }
    outputs = [{"OutputKey": "DeploymentUrl", "OutputValue": "https://d1.cloudfront.net"},
               {"OutputKey": "TableName", "OutputValue": "the-table"}]  # fmt: skip
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks", {"Stacks": [{**stack, "Outputs": outputs}]}, {"StackName": "app"}
        )
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "other"})
        assert stack_table("app", cloudformation) == "the-table"
        with pytest.raises(RuntimeError, match="no TableName output"):
            stack_table("other", cloudformation)
