"""The CDK app: the stack of template.yaml, deployed through the CDK.

template.yaml stays the single description of the AWS resources: this app
includes it (`CfnInclude` keeps its Transform, Globals, parameters,
conditions, outputs and logical ids; CloudFormation runs the SAM transform
at deploy time) and adds the one thing SAM's CLI otherwise does, the code:
the Lambda package (`make lambda-package`, build/lambda) becomes a CDK asset
and every AWS::Serverless::Function's CodeUri points at it.
tests/infra checks that the two deploy the same resources.

    cd infra && npx cdk synth    (offline: no credentials, no lookups; runs
                                  ../.venv/bin/python, see cdk.json)
    cd infra && npx cdk deploy   (after `cdk bootstrap`; the stack generates
                                  its admin key in Secrets Manager)

SAM's `!Ref <Function>.Alias` (the alias AutoPublishAlias makes, which
SnapStart needs: snapshots run published versions only) names no resource
CfnInclude knows: the app includes a copy of the template where each reads
`!Ref <Function>` and puts the original back as a raw override, for the
SAM transform to resolve at deploy time (`alias_refs`).

Context: `code` (the package directory, default ../build/lambda) and
`stack` (the stack name, default pyconvex).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3_assets, aws_sam
from aws_cdk import cloudformation_include as cfn_include
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DEFAULT_CODE = ROOT / "build" / "lambda"
DEFAULT_STACK = "pyconvex"


def function_ids(template: Path = TEMPLATE) -> list[str]:
    """Logical ids of the template's AWS::Serverless::Function resources."""
    resources = yaml_parse(template.read_text())["Resources"]
    return [rid for rid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]


ALIAS_SUFFIX = ".Alias"


def _is_alias_ref(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and list(node) == ["Ref"]
        and isinstance(node["Ref"], str)
        and node["Ref"].endswith(ALIAS_SUFFIX)
    )


def _has_alias_ref(node: Any) -> bool:
    if _is_alias_ref(node):
        return True
    if isinstance(node, dict):
        return any(_has_alias_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_alias_ref(v) for v in node)
    return False


def _function_refs(node: Any) -> Any:
    """`node` with each `Ref: X.Alias` read as `Ref: X` (same ordering: the
    function's resources come first either way)."""
    if _is_alias_ref(node):
        return {"Ref": node["Ref"].removesuffix(ALIAS_SUFFIX)}
    if isinstance(node, dict):
        return {k: _function_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_function_refs(v) for v in node]
    return node


def alias_refs(
    template: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """(the template CfnInclude can read, {resource id: {property: its
    original value}} and {output id: its original value}) for every
    resource property and output that holds a `Ref: <Function>.Alias`."""
    properties: dict[str, dict[str, Any]] = {}
    for rid, resource in template.get("Resources", {}).items():
        for name, value in resource.get("Properties", {}).items():
            if _has_alias_ref(value):
                properties.setdefault(rid, {})[name] = value
    outputs = {
        oid: output["Value"]
        for oid, output in template.get("Outputs", {}).items()
        if _has_alias_ref(output.get("Value"))
    }
    return _function_refs(template), properties, outputs


def build_stack(
    app: cdk.App, code: Path, *, stack_name: str = DEFAULT_STACK, template: Path = TEMPLATE
) -> cdk.Stack:
    """The stack: template.yaml included, its functions' code an asset of `code`."""
    if not code.is_dir():
        raise SystemExit(f"{code} is missing: build the Lambda package first (make lambda-package)")
    stack = cdk.Stack(
        app,
        stack_name,
        analytics_reporting=False,  # no AWS::CDK::Metadata resource
    )
    readable, properties, outputs = alias_refs(yaml_parse(template.read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "template.json"
        copy.write_text(json.dumps(readable))
        included = cfn_include.CfnInclude(stack, "Template", template_file=str(copy))
    for rid, originals in properties.items():
        resource = included.get_resource(rid)
        for name, value in originals.items():
            resource.add_property_override(name, value)
    for oid, value in outputs.items():
        included.get_output(oid).value = value
    asset = aws_s3_assets.Asset(stack, "Code", path=str(code))
    location = aws_sam.CfnFunction.S3LocationProperty(
        bucket=asset.s3_bucket_name, key=asset.s3_object_key
    )
    for rid in function_ids(template):
        function = included.get_resource(rid)
        if not isinstance(function, aws_sam.CfnFunction):
            raise TypeError(
                f"{rid}: included as {type(function).__name__}, not aws_sam.CfnFunction"
            )
        # Overrides Globals.CodeUri (a local path only SAM's CLI can upload).
        function.code_uri = location
    return stack


def main() -> None:
    app = cdk.App()
    code = Path(app.node.try_get_context("code") or DEFAULT_CODE)
    if not code.is_absolute():
        code = (Path(os.getcwd()) / code).resolve()
    build_stack(app, code, stack_name=app.node.try_get_context("stack") or DEFAULT_STACK)
    app.synth()


if __name__ == "__main__":
    main()
