"""template.yaml, after SAM's transform, against what the runtime expects of
it: the table's shape, the handlers, the environment, least-privilege IAM,
the change-feed mapping, the WebSocket wiring and the one deployment URL."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.store.dynamodb_table import TTL_ATTRIBUTE, create_table
from tests.infra.conftest import ROOT

HANDLERS = {
    "HttpFunction": "runtime.aws.http.handler",
    "WsFunction": "runtime.aws.ws.handler",
    "StreamFunction": "runtime.aws.stream.handler",
    "SchedulerFunction": "runtime.aws.scheduler.handler",
}
TABLE_ITEM_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
}
STREAM_READ = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in template["Resources"].items() if r["Type"] == kind}


def props(template: dict[str, Any], rid: str) -> dict[str, Any]:
    props_: dict[str, Any] = template["Resources"][rid]["Properties"]
    return props_


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from as_list(policy["PolicyDocument"]["Statement"])


def role_of(template: dict[str, Any], function: str) -> dict[str, Any]:
    ref = props(template, function)["Role"]
    assert ref == {"Fn::GetAtt": [ref["Fn::GetAtt"][0], "Arn"]}, ref
    role: dict[str, Any] = template["Resources"][ref["Fn::GetAtt"][0]]
    return role


def role_of_id(template: dict[str, Any], function: str) -> str:
    role_id: str = props(template, function)["Role"]["Fn::GetAtt"][0]
    return role_id


def grants(template: dict[str, Any], function: str) -> dict[str, list[Any]]:
    """action -> the resources the function's role allows it on."""
    out: dict[str, list[Any]] = {}
    for st in statements(role_of(template, function)):
        assert st["Effect"] == "Allow"
        for action in as_list(st["Action"]):
            out.setdefault(action, []).extend(as_list(st["Resource"]))
    return out


# ---- the table ---------------------------------------------------------------


class _RecordingClient:
    """Stands in for boto3's DynamoDB client: records create_table's request."""

    def __init__(self) -> None:
        self.request: dict[str, Any] = {}

    def create_table(self, **kwargs: Any) -> None:
        self.request = kwargs


def test_the_table_has_the_shape_the_store_creates(sam_template: dict[str, Any]) -> None:
    tables = of_type(sam_template, "AWS::DynamoDB::Table")
    assert list(tables) == ["Table"], "the store's only table"
    client = _RecordingClient()
    create_table(client, "t", wait=False)
    table = props(sam_template, "Table")
    for key in ("BillingMode", "AttributeDefinitions", "KeySchema"):
        assert table[key] == client.request[key], key
    assert (
        table["StreamSpecification"]["StreamViewType"]
        == client.request["StreamSpecification"]["StreamViewType"]
        == "NEW_AND_OLD_IMAGES"
    )
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert sam_template["Resources"]["Table"]["DeletionPolicy"] == "Retain"


# ---- functions ---------------------------------------------------------------


def test_four_functions_with_the_runtime_handlers(sam_template: dict[str, Any]) -> None:
    functions = of_type(sam_template, "AWS::Lambda::Function")
    assert {rid: f["Properties"]["Handler"] for rid, f in functions.items()} == HANDLERS
    for f in functions.values():
        assert re.fullmatch(r"python3\.1[12]", f["Properties"]["Runtime"])
        assert f["Properties"]["Architectures"] in (["arm64"], ["x86_64"])


def _module_file(handler: str) -> tuple[Path, str]:
    module, _, attr = handler.rpartition(".")
    return ROOT.joinpath(*module.split(".")).with_suffix(".py"), attr


def _defines(path: Path, name: str) -> bool:
    """The module defines `name` at top level (read, not imported)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return True
    return False


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_each_handler_is_a_module_under_runtime_aws(
    sam_template: dict[str, Any], function: str
) -> None:
    handler = props(sam_template, function)["Handler"]
    path, attr = _module_file(handler)
    assert path.parent == ROOT / "runtime" / "aws", handler
    if not path.exists():
        if function == "HttpFunction":
            pytest.fail(f"{handler}: {path.relative_to(ROOT)} is missing")
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet ({handler})")
    assert _defines(path, attr), f"{path.relative_to(ROOT)} defines no top-level {attr}"


def _documented_settings() -> set[str]:
    path = ROOT / "runtime" / "aws" / "settings.py"
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return set(re.findall(r"\b(?:PYCONVEX|OPENSEARCH)_[A-Z_0-9]+\b", doc))


def test_every_variable_is_one_the_runtime_reads(sam_template: dict[str, Any]) -> None:
    # PYCONVEX_WS_ENDPOINT: the Management API endpoint, known before settings.py documents it.
    known = _documented_settings() | {"PYCONVEX_WS_ENDPOINT"}
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    for rid in HANDLERS:
        env = props(sam_template, rid)["Environment"]["Variables"]
        unknown = {k for k in env if k not in known and k not in powertools}
        assert not unknown, f"{rid}: no runtime/aws/settings.py entry for {sorted(unknown)}"
        required = {"PYCONVEX_TABLE", "PYCONVEX_WS_ENDPOINT"}
        assert required | powertools <= set(env), rid
        assert env["PYCONVEX_TABLE"] == {"Ref": "Table"}
        assert env["PYCONVEX_PROD"] == "1"
        assert env["PYCONVEX_WS_ENDPOINT"] == {
            "Fn::Sub": "https://${WsApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
        }
    services = {
        props(sam_template, rid)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for rid in HANDLERS
    }
    assert len(services) == len(HANDLERS), "one service name per function"


def test_each_function_logs_to_its_own_group(sam_template: dict[str, Any]) -> None:
    groups = {
        rid: g
        for rid, g in of_type(sam_template, "AWS::Logs::LogGroup").items()
        if g["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/")
    }
    assert len(groups) == len(HANDLERS)
    by_name = {json.dumps(g["Properties"]["LogGroupName"]): rid for rid, g in groups.items()}
    for rid in HANDLERS:
        name = props(sam_template, rid)["FunctionName"]["Fn::Sub"]
        group = by_name[json.dumps({"Fn::Sub": f"/aws/lambda/{name}"})]
        assert props(sam_template, group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        logs = grants(sam_template, rid)
        assert set(logs) >= {"logs:CreateLogStream", "logs:PutLogEvents"}
        assert "logs:CreateLogGroup" not in logs, "the group is the template's, with retention"
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            assert logs[action] == [{"Fn::GetAtt": [group, "Arn"]}]
    assert sam_template["Parameters"]["LogRetentionDays"]["Default"] == 14


# ---- IAM -----------------------------------------------------------------------


def test_no_statement_grants_on_every_resource(sam_template: dict[str, Any]) -> None:
    """AWS allows scoping every action the functions need, so none is on "*";
    and no managed policy (they grant on "*") is attached."""
    roles = of_type(sam_template, "AWS::IAM::Role")
    # One role per function (none generated by SAM), and API Gateway's
    # account-wide logging role (tests/infra/test_hardening_template.py), and
    # EventBridge Scheduler's (tests/infra/test_scheduler_template.py).
    expected = {role_of_id(sam_template, f) for f in HANDLERS} | {
        "ApiGatewayLogRoleForAccount",
        "SchedulerInvokeRole",
    }
    assert set(roles) == expected and len(expected) == len(HANDLERS) + 2
    for rid, role in roles.items():
        assert not role["Properties"].get("ManagedPolicyArns"), rid
        for st in statements(role):
            assert "*" not in as_list(st["Resource"]), (rid, st)
            assert "NotResource" not in st and "NotAction" not in st, (rid, st)
            assert not any(a.endswith(":*") or a == "*" for a in as_list(st["Action"])), st


def test_each_function_may_use_the_table_items(sam_template: dict[str, Any]) -> None:
    for rid in HANDLERS:
        g = grants(sam_template, rid)
        table_actions = {a for a in g if a.startswith("dynamodb:") and a in TABLE_ITEM_ACTIONS}
        assert table_actions == TABLE_ITEM_ACTIONS, rid
        for action in TABLE_ITEM_ACTIONS:
            assert g[action] == [{"Fn::GetAtt": ["Table", "Arn"]}], (rid, action)


def test_only_ws_and_stream_post_to_connections(sam_template: dict[str, Any]) -> None:
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WsApi}/${Stage}/"
    expected = [{"Fn::Sub": f"{prefix}{m}/@connections/*"} for m in ("POST", "DELETE", "GET")]
    assert "execute-api:ManageConnections" not in grants(sam_template, "HttpFunction")
    for rid in ("WsFunction", "StreamFunction"):
        assert grants(sam_template, rid)["execute-api:ManageConnections"] == expected


def test_the_stream_function_reads_the_stream_and_nothing_else_does(
    sam_template: dict[str, Any],
) -> None:
    stream = grants(sam_template, "StreamFunction")
    for action in STREAM_READ - {"dynamodb:ListStreams"}:
        assert stream[action] == [{"Fn::GetAtt": ["Table", "StreamArn"]}]
    assert stream["dynamodb:ListStreams"] == [{"Fn::Sub": "${Table.Arn}/stream/*"}]
    assert stream["sqs:SendMessage"] == [
        {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]},
        {"Fn::GetAtt": ["JobsQueue", "Arn"]},  # dispatch: tests/infra/test_scheduler_template.py
    ]
    for rid in ("HttpFunction", "WsFunction"):
        granted = set(grants(sam_template, rid))
        assert not granted & (STREAM_READ | {"sqs:SendMessage"}), rid


# ---- the change feed ---------------------------------------------------------


def test_the_stream_mapping_reports_failures_and_gives_up_boundedly(
    sam_template: dict[str, Any],
) -> None:
    mappings = of_type(sam_template, "AWS::Lambda::EventSourceMapping")
    (m,) = (r["Properties"] for r in mappings.values() if "StartingPosition" in r["Properties"])
    assert m["EventSourceArn"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert m["FunctionName"] == {"Ref": "StreamFunctionAliaslive"}  # SnapStart: the alias
    assert m["StartingPosition"] == "LATEST"
    assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert m["BisectBatchOnFunctionError"] is True
    # -1 (the default) retries until the record expires from the stream (24 h).
    assert 0 <= m["MaximumRetryAttempts"] <= 10_000
    assert 60 <= m["MaximumRecordAgeInSeconds"] <= 604_800
    queue = m["DestinationConfig"]["OnFailure"]["Destination"]
    assert queue == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    assert sam_template["Resources"]["StreamFailureQueue"]["Type"] == "AWS::SQS::Queue"


# ---- the APIs ----------------------------------------------------------------


def test_the_http_api_sends_everything_to_the_http_function(sam_template: dict[str, Any]) -> None:
    apis = {
        rid: r
        for rid, r in of_type(sam_template, "AWS::ApiGatewayV2::Api").items()
        if "Body" in r["Properties"]
    }
    assert list(apis) == ["HttpApi"]
    paths = props(sam_template, "HttpApi")["Body"]["paths"]
    assert list(paths) == ["/$default"], "one catch-all route (SAM writes $default so)"
    integration = paths["/$default"]["x-amazon-apigateway-any-method"][
        "x-amazon-apigateway-integration"
    ]
    assert integration["payloadFormatVersion"] == "2.0"
    assert integration["type"] == "aws_proxy"
    assert "HttpFunctionAliaslive" in json.dumps(integration["uri"])  # SnapStart: the alias


def test_the_websocket_api_routes_every_message_to_the_ws_function(
    sam_template: dict[str, Any],
) -> None:
    api = props(sam_template, "WsApi")
    assert api["ProtocolType"] == "WEBSOCKET"
    # Convex messages have no "action": every one falls to $default.
    assert api["RouteSelectionExpression"] == "$request.body.action"
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in of_type(sam_template, "AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    integrations = of_type(sam_template, "AWS::ApiGatewayV2::Integration")
    for key, route in routes.items():
        assert route["ApiId"] == {"Ref": "WsApi"}, key
        (target,) = re.findall(r"^integrations/\$\{(\w+)\}$", route["Target"]["Fn::Sub"])
        integration = integrations[target]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["IntegrationUri"]["Fn::Sub"][1] == {
            "Alias": {"Ref": "WsFunctionAliaslive"}
        }
    stages = [
        r["Properties"]
        for r in of_type(sam_template, "AWS::ApiGatewayV2::Stage").values()
        if r["Properties"]["ApiId"] == {"Ref": "WsApi"}
    ]
    (stage,) = stages
    assert stage["StageName"] == {"Ref": "Stage"} and stage["AutoDeploy"] is True
    permitted = {
        p["Properties"]["SourceArn"]["Fn::Sub"].rsplit("/", 1)[1]
        for p in of_type(sam_template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": "WsFunctionAliaslive"}  # SnapStart: the alias
    }
    assert permitted == set(routes), "API Gateway may invoke the ws function on its routes only"


# ---- one deployment URL ------------------------------------------------------


def _cloudfront_matches(pattern: str, path: str) -> bool:
    """CloudFront's path patterns: `*` any run of characters (slashes too),
    `?` one character, the rest literal and case-sensitive."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, path) is not None


def _behaviour(config: dict[str, Any], path: str) -> dict[str, Any]:
    """The cache behaviour CloudFront picks for `path`: the first that matches."""
    for behaviour in config.get("CacheBehaviors", []):
        if _cloudfront_matches(behaviour["PathPattern"], path):
            return dict(behaviour)
    return dict(config["DefaultCacheBehavior"])


def _route_paths(call: str) -> list[str]:
    """The literal paths of the `call(...)` routes (Route, WebSocketRoute) in runtime/http."""
    paths = []
    for file in sorted((ROOT / "runtime" / "http").glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == call
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                paths.append(node.args[0].value)
    return paths


def _concrete(path: str) -> str:
    """A request path of a route: a client version, and a function named `sync`."""
    return path.replace("{version}", "1.21.0").replace("{fn:path}", "chat/sync")


@pytest.fixture(scope="module")
def distribution(sam_template: dict[str, Any]) -> dict[str, Any]:
    (dist,) = of_type(sam_template, "AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = dist["Properties"]["DistributionConfig"]
    return config


def _origin(config: dict[str, Any], behaviour: dict[str, Any]) -> dict[str, Any]:
    (origin,) = [o for o in config["Origins"] if o["Id"] == behaviour["TargetOriginId"]]
    return dict(origin)


def test_sync_sockets_go_to_the_websocket_stage_and_the_rest_to_the_http_api(
    distribution: dict[str, Any],
) -> None:
    ws_paths = [_concrete(p) for p in _route_paths("WebSocketRoute")]
    # File URLs (/api/storage/{key}) are the bucket's: tests/infra/test_files_template.py.
    http_paths = [
        _concrete(p)
        for p in _route_paths("Route")
        if p != "/{path:path}" and not p.startswith("/api/storage/{")
    ]
    assert "/api/sync" in ws_paths and "/api/1.21.0/sync" in ws_paths
    assert "/api/run/chat/sync" in http_paths and "/api/query" in http_paths
    # HTTP actions: any other path, even one that ends in "sync".
    http_paths += ["/", "/sync", "/hooks/api/sync", "/api/query_sync_ts"]
    for path in ws_paths:
        origin = _origin(distribution, _behaviour(distribution, path))
        assert "${WsApi}" in origin["DomainName"]["Fn::Sub"], path
        assert origin["OriginPath"] == {"Fn::Sub": "/${Stage}"}
    for path in http_paths:
        origin = _origin(distribution, _behaviour(distribution, path))
        assert "${HttpApi}" in origin["DomainName"]["Fn::Sub"], path
        assert "OriginPath" not in origin


def test_nothing_is_cached_and_every_header_but_host_passes(distribution: dict[str, Any]) -> None:
    behaviours = [distribution["DefaultCacheBehavior"], *distribution["CacheBehaviors"]]
    for b in behaviours:
        assert b["CachePolicyId"] == CACHING_DISABLED
        if b["TargetOriginId"] != "files":  # S3 gets none: tests/infra/test_files_template.py
            assert b["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
        assert b["ViewerProtocolPolicy"] in ("https-only", "redirect-to-https")
    assert set(distribution["DefaultCacheBehavior"]["AllowedMethods"]) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "PATCH",
        "POST",
        "DELETE",
    }


def _run_cloudfront_function(code: str, uri: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is missing (node on PATH): it runs the CloudFront Function here")
    event = {"request": {"method": "GET", "uri": uri, "querystring": {}, "headers": {}}}
    script = f"{code}\nprocess.stdout.write(JSON.stringify(handler({json.dumps(event)})));"
    done = subprocess.run(
        [node, "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_sync_paths_are_rewritten_to_the_stage_root(
    sam_template: dict[str, Any], distribution: dict[str, Any]
) -> None:
    ws_behaviours = [
        b
        for b in distribution["CacheBehaviors"]
        if b["TargetOriginId"] == _behaviour(distribution, "/api/sync")["TargetOriginId"]
    ]
    assert len(ws_behaviours) == 2
    for b in ws_behaviours:
        (assoc,) = b["FunctionAssociations"]
        assert assoc["EventType"] == "viewer-request"
        function = assoc["FunctionARN"]["Fn::GetAtt"][0]
        fn = props(sam_template, function)
        assert fn["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
        assert fn["AutoPublish"] is True
        for uri in ("/api/sync", "/api/1.21.0/sync"):
            request = _run_cloudfront_function(fn["FunctionCode"], uri)
            assert request["uri"] == "/", uri
            assert request["method"] == "GET"


def test_the_outputs_name_the_three_urls(sam_template: dict[str, Any]) -> None:
    outputs = sam_template["Outputs"]
    assert outputs["DeploymentUrl"]["Value"] == {"Fn::Sub": "https://${Distribution.DomainName}"}
    assert outputs["HttpApiUrl"]["Value"]["Fn::Sub"].startswith("https://${HttpApi}.")
    assert outputs["WebSocketUrl"]["Value"]["Fn::Sub"].startswith("wss://${WsApi}.")
    assert outputs["WebSocketUrl"]["Value"]["Fn::Sub"].endswith("/${Stage}")


# ---- alarms --------------------------------------------------------------------


def test_errors_throttles_and_iterator_age_alarm_to_the_topic(
    sam_template: dict[str, Any],
) -> None:
    alarms = [a["Properties"] for a in of_type(sam_template, "AWS::CloudWatch::Alarm").values()]
    watched = {
        (a["MetricName"], a["Dimensions"][0]["Value"]["Ref"])
        for a in alarms
        if a["Namespace"] == "AWS/Lambda"
    }
    expected = {(m, f) for f in HANDLERS for m in ("Errors", "Throttles")}
    assert watched == expected | {("IteratorAge", "StreamFunction")}
    for a in alarms:
        assert a["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert sam_template["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
