"""The stack's defences, checked on both descriptions after SAM's transform
(template.yaml as `sam deploy` sends it, infra/app.py as `cdk synth` makes
it): throttling on both API stages, reserved concurrency for the WebSocket
function, JSON access logs for both APIs, and the admin key generated in
Secrets Manager, readable by the http function alone and never in any
function's environment."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from runtime.aws.deploy import ADMIN_KEY_OUTPUT
from tests.infra.test_template import HANDLERS, grants, of_type, props

pytestmark = pytest.mark.parametrize("template_of", ["sam_template", "cdk_template"])


@pytest.fixture
def template(request: pytest.FixtureRequest, template_of: str) -> dict[str, Any]:
    synthesized: dict[str, Any] = request.getfixturevalue(template_of)
    return synthesized


def stage_of(template: dict[str, Any], api: str) -> dict[str, Any]:
    (stage,) = [
        r["Properties"]
        for r in of_type(template, "AWS::ApiGatewayV2::Stage").values()
        if r["Properties"]["ApiId"] == {"Ref": api}
    ]
    return dict(stage)


def number_parameter(template: dict[str, Any], name: str) -> int:
    parameter = template["Parameters"][name]
    assert parameter["Type"] == "Number", name
    default = int(parameter["Default"])
    assert default >= int(parameter.get("MinValue", 0)), name
    return default


# ---- throttling ----------------------------------------------------------------


@pytest.mark.parametrize("api, prefix", [("HttpApi", "Http"), ("WsApi", "Ws")])
def test_each_api_stage_throttles_with_parameters(
    template: dict[str, Any], api: str, prefix: str
) -> None:
    settings = stage_of(template, api)["DefaultRouteSettings"]
    for kind in ("RateLimit", "BurstLimit"):
        parameter = f"{prefix}Throttle{kind}"
        assert settings[f"Throttling{kind}"] == {"Ref": parameter}, api
        assert number_parameter(template, parameter) >= 1
    # Below the account's own default (10,000 requests/s, burst 5,000), so
    # one API cannot take every request the region allows the account.
    assert number_parameter(template, f"{prefix}ThrottleRateLimit") < 10_000
    assert number_parameter(template, f"{prefix}ThrottleBurstLimit") <= 5_000


# ---- reserved concurrency ----------------------------------------------------


def test_the_websocket_function_has_reserved_concurrency(template: dict[str, Any]) -> None:
    ws = props(template, "WsFunction")
    assert ws["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasWsReservedConcurrency",
            {"Ref": "WsReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert 1 <= number_parameter(template, "WsReservedConcurrency") <= 900
    # 0 reserves none (an account with too little concurrency to reserve).
    assert template["Conditions"]["HasWsReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WsReservedConcurrency"}, "0"]}]
    }
    for rid in set(HANDLERS) - {"WsFunction"}:
        assert "ReservedConcurrentExecutions" not in props(template, rid), rid


# ---- access logs ---------------------------------------------------------------

HTTP_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
}
WS_FIELDS = {
    **HTTP_FIELDS,
    "eventType": "$context.eventType",
    "connectionId": "$context.connectionId",
}


@pytest.mark.parametrize("api, fields", [("HttpApi", HTTP_FIELDS), ("WsApi", WS_FIELDS)])
def test_each_api_writes_json_access_logs_to_a_group_with_retention(
    template: dict[str, Any], api: str, fields: dict[str, str]
) -> None:
    settings = stage_of(template, api)["AccessLogSettings"]
    destination = settings["DestinationArn"]["Fn::GetAtt"]
    assert destination[1] == "Arn"
    group = template["Resources"][destination[0]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/apigateway/")
    line = json.loads(settings["Format"])  # every value quoted: a missing one is "-"
    assert isinstance(line, dict) and all(isinstance(v, str) for v in line.values())
    assert {k: line.get(k) for k in fields} == fields
    assert all(re.fullmatch(r"\$context\.[A-Za-z.]+", v) for v in line.values()), line


def test_websocket_access_logs_have_the_account_role_they_need(template: dict[str, Any]) -> None:
    """API Gateway refuses access logs on a WebSocket stage while the account
    has no CloudWatch Logs role; the stack sets one (unless told the account
    has one), keeps it on deletion, and orders the stage after it."""
    parameter = template["Parameters"]["ApiGatewayLogRole"]
    assert parameter["Default"] == "create"
    assert set(parameter["AllowedValues"]) == {"create", "existing"}
    account = template["Resources"]["ApiGatewayAccount"]
    role = template["Resources"]["ApiGatewayLogRoleForAccount"]
    for resource in (account, role):
        assert resource["Condition"] == "CreatesApiGatewayLogRole"
        assert resource["DeletionPolicy"] == "Retain"
    assert account["Properties"]["CloudWatchRoleArn"] == {
        "Fn::GetAtt": ["ApiGatewayLogRoleForAccount", "Arn"]
    }
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]
    description = stage_of(template, "WsApi")["Description"]["Fn::If"]
    assert description[0] == "CreatesApiGatewayLogRole"
    assert "${ApiGatewayAccount}" in description[1]["Fn::Sub"]


# ---- the admin key ---------------------------------------------------------------


def test_the_admin_key_is_generated_in_secrets_manager(template: dict[str, Any]) -> None:
    (rid,) = of_type(template, "AWS::SecretsManager::Secret")
    secret = props(template, rid)
    assert "SecretString" not in secret, "generated, never written in the template"
    generate = secret["GenerateSecretString"]
    # Letters and digits: 43 of them carry 256 bits (32 random bytes).
    assert generate["PasswordLength"] >= 43
    assert generate["ExcludePunctuation"] is True
    assert "SecretStringTemplate" not in generate, "the SecretString is the key itself"
    assert not any(p.get("NoEcho") for p in template["Parameters"].values()), "no typed key"
    assert template["Outputs"][ADMIN_KEY_OUTPUT]["Value"] == {"Ref": rid}


def test_no_function_environment_holds_the_key(template: dict[str, Any]) -> None:
    (secret,) = of_type(template, "AWS::SecretsManager::Secret")
    for rid in HANDLERS:
        env = props(template, rid)["Environment"]["Variables"]
        assert "PYCONVEX_ADMIN_KEY" not in env, rid
        # A dynamic reference would put the secret's value into the variable.
        assert "resolve:secretsmanager" not in json.dumps(env), rid
    http = props(template, "HttpFunction")["Environment"]["Variables"]
    assert http["PYCONVEX_ADMIN_KEY_SECRET"] == {"Ref": secret}, "the ARN, not the value"
    for rid in set(HANDLERS) - {"HttpFunction"}:
        assert "PYCONVEX_ADMIN_KEY_SECRET" not in props(template, rid)["Environment"]["Variables"]


def test_only_the_http_function_may_read_the_secret_and_only_it(template: dict[str, Any]) -> None:
    (secret,) = of_type(template, "AWS::SecretsManager::Secret")
    http = grants(template, "HttpFunction")
    assert http["secretsmanager:GetSecretValue"] == [{"Ref": secret}]
    assert [a for a in http if a.startswith("secretsmanager:")] == ["secretsmanager:GetSecretValue"]
    for rid in set(HANDLERS) - {"HttpFunction"}:
        assert not [a for a in grants(template, rid) if a.startswith("secretsmanager:")], rid
