"""SnapStart on the Lambda functions (python3.12 supports it): every
function publishes a version with SnapStart on, behind the alias `live`,
and everything that invokes a function invokes the alias (SnapStart runs
published versions only: an invoker of the unqualified function would run
$LATEST, cold, without a snapshot). Checked after SAM's transform, on
template.yaml and on the synthesized CDK app alike."""

from __future__ import annotations

import random
from typing import Any

import pytest

from runtime.aws import snapstart

ALIAS = "live"


@pytest.fixture(params=["sam_template", "cdk_template"])
def deployed(request: pytest.FixtureRequest) -> dict[str, Any]:
    template: dict[str, Any] = request.getfixturevalue(request.param)
    return template


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in template["Resources"].items() if r["Type"] == kind}


def _aliases(template: dict[str, Any]) -> dict[str, str]:
    """{function id: its alias's id}"""
    return {
        r["Properties"]["FunctionName"]["Ref"]: rid
        for rid, r in _of_type(template, "AWS::Lambda::Alias").items()
    }


def test_every_function_publishes_a_snapstart_version_behind_an_alias(
    deployed: dict[str, Any],
) -> None:
    functions = _of_type(deployed, "AWS::Lambda::Function")
    assert functions
    for rid, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] >= "python3.12", rid
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}, rid
    aliases = _aliases(deployed)
    assert set(aliases) == set(functions)
    for alias in aliases.values():
        assert deployed["Resources"][alias]["Properties"]["Name"] == ALIAS


def _refs(node: Any) -> set[str]:
    """Logical ids referenced (Ref, GetAtt, Sub) anywhere in `node`."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                pattern = value[0] if isinstance(value, list) else value
                found |= {part.split("}")[0].split(".")[0] for part in pattern.split("${")[1:]}
                found |= _refs(value)
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def test_every_invoker_invokes_the_alias(deployed: dict[str, Any]) -> None:
    """Permissions, event source mappings, the WebSocket integration and the
    sweep schedule name the alias, never the bare function."""
    functions = set(_of_type(deployed, "AWS::Lambda::Function"))
    aliases = _aliases(deployed)
    invokers = {
        "AWS::Lambda::Permission": "FunctionName",
        "AWS::Lambda::EventSourceMapping": "FunctionName",
        "AWS::ApiGatewayV2::Integration": "IntegrationUri",
        "AWS::Scheduler::Schedule": "Target",
    }
    seen = {kind: 0 for kind in invokers}
    for kind, prop in invokers.items():
        for rid, resource in _of_type(deployed, kind).items():
            named = _refs(resource["Properties"][prop])
            if not named & (functions | set(aliases.values())):
                continue  # invokes no function of the stack
            seen[kind] += 1
            assert not named & functions, f"{rid} invokes the function, not its alias"
    assert all(seen.values()), seen


def test_the_crons_target_is_the_scheduler_alias(deployed: dict[str, Any]) -> None:
    """deploy reconciles the cron schedules against this output."""
    value = deployed["Outputs"]["SchedulerFunctionArn"]["Value"]
    assert value["Fn::Sub"].endswith(":function:${SchedulerFunction}:" + ALIAS)


def test_after_a_restore_the_global_random_generator_is_reseeded() -> None:
    """Environments restored from one snapshot share the `random` state of
    its import; the restore hook draws a fresh seed from the OS."""
    random.seed(19)
    snapshot = random.getstate()
    first = [random.random() for _ in range(4)]
    random.setstate(snapshot)  # a second environment restored from the same snapshot
    snapstart.after_restore()
    assert [random.random() for _ in range(4)] != first
