"""Deploying search on AWS: the schema push builds search indexes in the
stack's OpenSearch (the local OpenSearch-compatible server here) from the
stored documents; a schema with search indexes is refused, before anything
is pushed, when the stack has no OpenSearch endpoint, naming the parameter;
the stack finds its endpoint in its outputs; template.yaml makes OpenSearch
optional (a parameter, a condition, the functions' environment and rights)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.aws.deploy import check_search, push_schema, stack_search_engine
from runtime.aws.search import engine_for
from runtime.database import Database
from runtime.emulator.opensearch import LocalOpenSearch
from runtime.search.opensearch import OpenSearchEngine
from runtime.search.text import parse_search
from runtime.store.dynamodb import DynamoDBStore, create_table
from tests.support.aws import dynamodb_local_client, fake_aws_env

ROOT = Path(__file__).resolve().parents[2]
SEARCH_APP = ROOT / "tests" / "integration" / "apps" / "search"
CHAT_APP = ROOT / "tests" / "integration" / "apps" / "chat"
INDEX = "messages/search_body/body,channel"
FUNCTIONS = ("HttpFunction", "WsFunction", "StreamFunction", "SchedulerFunction")


@pytest.fixture
def table(dynamodb_local_endpoint: str) -> Iterator[tuple[str, Any, Any]]:
    client = dynamodb_local_client(dynamodb_local_endpoint)
    streams = dynamodb_local_client(dynamodb_local_endpoint, "dynamodbstreams")
    name = f"sd{uuid.uuid4().hex[:12]}"
    create_table(client, name)
    try:
        yield name, client, streams
    finally:
        client.delete_table(TableName=name)


@pytest.mark.dynamodb_local
def test_deploy_refuses_search_indexes_without_an_endpoint(table: tuple[str, Any, Any]) -> None:
    name, client, streams = table
    with pytest.raises(RuntimeError) as refused:
        push_schema(name, SEARCH_APP, client=client, streams_client=streams)
    message = str(refused.value)
    assert "messages.search_body" in message
    assert "OpenSearchEndpoint parameter" in message
    assert "sam deploy --parameter-overrides OpenSearchEndpoint=https://" in message
    # Refused before anything was pushed: the table is still empty.
    assert client.scan(TableName=name)["Items"] == []


@pytest.mark.dynamodb_local
def test_deploy_refuses_a_stack_whose_endpoint_was_removed(table: tuple[str, Any, Any]) -> None:
    """The indexes were built when the stack had an endpoint: a push without
    one builds nothing, and is refused all the same (the Lambdas would have
    no engine to search or feed)."""
    name, client, streams = table
    with LocalOpenSearch(refresh_interval=None) as server:
        search = engine_for(server.url, name, sigv4=False)
        push_schema(name, SEARCH_APP, client=client, streams_client=streams, search=search)
    with pytest.raises(RuntimeError, match="OpenSearchEndpoint parameter"):
        push_schema(name, SEARCH_APP, client=client, streams_client=streams)


@pytest.mark.dynamodb_local
def test_the_deploy_command_says_what_to_set(
    table: tuple[str, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.cli.main import main

    name, _, _ = table
    code = main(["deploy", "--table", name, "--functions", str(SEARCH_APP)])
    assert code != 0
    assert "OpenSearchEndpoint" in capsys.readouterr().err


def test_an_app_without_search_indexes_needs_no_endpoint() -> None:
    check_search(CHAT_APP, None)  # no error


@pytest.mark.dynamodb_local
def test_deploy_builds_the_index_from_stored_documents(table: tuple[str, Any, Any]) -> None:
    name, client, streams = table
    store = DynamoDBStore(name, client=client, streams_client=streams)
    stored = Database(store).mutation(
        lambda tx: [
            tx.insert("messages", {"body": "hello world", "channel": "py"}),
            tx.insert("messages", {"body": "goodbye", "channel": "py"}),
        ]
    )
    store.close()
    with LocalOpenSearch(refresh_interval=None) as server:
        search = engine_for(server.url, name, sigv4=False)
        push_schema(name, SEARCH_APP, client=client, streams_client=streams, search=search)
        assert search is not None
        found = search.candidates(INDEX, parse_search("hello"), {}, 10)
        assert [c.doc_id for c in found] == [stored.value[0]]


def _cloudformation_with(outputs: list[dict[str, str]]) -> Any:
    import boto3
    from botocore.stub import Stubber

    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    stack = {
        "StackName": "My-App",
        "CreationTime": datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": outputs,
    }
    stub = Stubber(cloudformation)
    stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "My-App"})
    stub.activate()
    return cloudformation


def test_the_stack_output_names_the_engine() -> None:
    endpoint = "https://search-app-abc.us-east-1.es.amazonaws.com"
    cloudformation = _cloudformation_with([{"OutputKey": "OpenSearchEndpoint", "OutputValue": endpoint}])  # fmt: skip
    with fake_aws_env():  # signed with the deployer's credentials
        engine = stack_search_engine("My-App", cloudformation)
    assert isinstance(engine, OpenSearchEngine)
    assert engine.endpoint == "https://search-app-abc.us-east-1.es.amazonaws.com:443"
    assert engine.prefix == "my-app"  # the Lambdas' PYCONVEX_SEARCH_PREFIX, lower-cased
    # A stack without search has no such output (its condition is false).
    assert stack_search_engine("My-App", _cloudformation_with([])) is None


# ---- template.yaml ---------------------------------------------------------


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    from tests.infra.conftest import TEMPLATE, load_yaml

    return load_yaml(TEMPLATE)


def test_the_template_has_the_optional_endpoint(source: dict[str, Any]) -> None:
    parameter = source["Parameters"]["OpenSearchEndpoint"]
    assert parameter["Type"] == "String" and parameter["Default"] == ""
    assert source["Conditions"]["HasSearch"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "OpenSearchEndpoint"}, ""]}]
    }
    env = source["Globals"]["Function"]["Environment"]["Variables"]
    assert env["OPENSEARCH_ENDPOINT"] == {"Ref": "OpenSearchEndpoint"}
    assert env["PYCONVEX_SEARCH_PREFIX"] == {"Ref": "AWS::StackName"}
    output = source["Outputs"]["OpenSearchEndpoint"]
    assert output["Condition"] == "HasSearch"
    assert output["Value"] == {"Ref": "OpenSearchEndpoint"}


def test_the_functions_get_the_endpoint_and_read_rights_only_with_search(
    source: dict[str, Any],
) -> None:
    import copy

    from tests.infra.conftest import CODE_PLACEHOLDER, sam_transform

    source = copy.deepcopy(source)
    source["Globals"]["Function"]["CodeUri"] = CODE_PLACEHOLDER  # as tests/infra does
    template = sam_transform(source)
    for fn in FUNCTIONS:
        env = template["Resources"][fn]["Properties"]["Environment"]["Variables"]
        assert env["OPENSEARCH_ENDPOINT"] == {"Ref": "OpenSearchEndpoint"}, fn
    policy = template["Resources"]["SearchAccessPolicy"]
    assert policy["Condition"] == "HasSearch"
    roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
    assert roles == {
        template["Resources"][fn]["Properties"]["Role"]["Fn::GetAtt"][0] for fn in FUNCTIONS
    }
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    # No function creates or drops indexes (PUT, DELETE): the deploy does.
    assert sorted(statement["Action"]) == ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"]
