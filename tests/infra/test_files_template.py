"""Files on AWS, in template.yaml and in the CDK app that includes it: a
private, encrypted bucket; CloudFront reads `/api/storage/<key>` from it with
an origin access control (and nothing else reads it); uploads go to the HTTP
API; only the http and ws functions may touch the files, on their prefix."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.aws.backend import FILES_PREFIX
from tests.infra.test_template import (
    CACHING_DISABLED,
    _behaviour,
    _origin,
    as_list,
    grants,
    of_type,
    props,
    statements,
)

CORS_AND_SECURITY_HEADERS = "e61eb60c-9c35-4d20-a928-2b84e02af89c"
FILE_ACTIONS = {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
FILES_OBJECTS = {"Fn::Sub": "${FilesBucket.Arn}/api/storage/*"}
BUCKET_ARN = {"Fn::GetAtt": ["FilesBucket", "Arn"]}
DISTRIBUTION_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"
}
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module", params=["sam", "cdk"])
def template(request: pytest.FixtureRequest) -> dict[str, Any]:
    """template.yaml as SAM deploys it, and the CDK app's synth (both transformed)."""
    name = "sam_template" if request.param == "sam" else "cdk_template"
    found: dict[str, Any] = request.getfixturevalue(name)
    return found


def _distribution(template: dict[str, Any]) -> dict[str, Any]:
    (dist,) = of_type(template, "AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = dist["Properties"]["DistributionConfig"]
    return config


# ---- the bucket ----------------------------------------------------------------


def test_the_bucket_is_encrypted_private_and_owner_enforced(template: dict[str, Any]) -> None:
    (rid,) = of_type(template, "AWS::S3::Bucket")
    assert rid == "FilesBucket"
    bucket = props(template, rid)
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert template["Resources"][rid]["DeletionPolicy"] == "Retain"  # the app's data


def test_unfinished_multipart_uploads_are_aborted_after_a_day(template: dict[str, Any]) -> None:
    (rule,) = props(template, "FilesBucket")["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert set(rule) <= {"Id", "Status", "AbortIncompleteMultipartUpload"}  # nothing expires


def _bucket_policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = of_type(template, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": "FilesBucket"}
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_the_bucket_refuses_plain_http(template: dict[str, Any]) -> None:
    (deny,) = [s for s in _bucket_policy(template) if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Resource"] == [BUCKET_ARN, {"Fn::Sub": "${FilesBucket.Arn}/*"}]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_this_distribution_reads_the_files(template: dict[str, Any]) -> None:
    """GetObject on the files' prefix, ListBucket (a missing file is 404, not
    403), for CloudFront only when it acts for this stack's distribution."""
    allows = [s for s in _bucket_policy(template) if s["Effect"] == "Allow"]
    assert {s["Action"]: s["Resource"] for s in allows} == {
        "s3:GetObject": FILES_OBJECTS,
        "s3:ListBucket": BUCKET_ARN,
    }
    for statement in allows:
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"AWS:SourceArn": DISTRIBUTION_ARN}}


def test_the_object_prefix_is_the_file_urls_path() -> None:
    """The Lambdas' objects are `api/storage/<key>`, what CloudFront forwards
    for `/api/storage/<key>` (and what the policies name)."""
    assert FILES_PREFIX == "api/storage/"
    assert FILES_OBJECTS["Fn::Sub"].endswith("/" + FILES_PREFIX + "*")


# ---- CloudFront ----------------------------------------------------------------


def test_the_distribution_signs_its_requests_to_the_bucket(template: dict[str, Any]) -> None:
    (rid,) = of_type(template, "AWS::CloudFront::OriginAccessControl")
    config = props(template, rid)["OriginAccessControlConfig"]
    assert config["OriginAccessControlOriginType"] == "s3"
    assert config["SigningProtocol"] == "sigv4"
    assert config["SigningBehavior"] == "always"
    origin = _origin(_distribution(template), {"TargetOriginId": "files"})
    assert origin["DomainName"] == {"Fn::GetAtt": ["FilesBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [rid, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not a legacy OAI


def test_uploads_go_to_the_http_api_and_files_to_the_bucket(template: dict[str, Any]) -> None:
    dist = _distribution(template)
    first, second = dist["CacheBehaviors"][:2]
    assert (first["PathPattern"], second["PathPattern"]) == (
        "/api/storage/upload*",
        "/api/storage/*",
    )
    upload = _behaviour(dist, "/api/storage/upload")
    assert upload["PathPattern"] == "/api/storage/upload*"
    assert "${HttpApi}" in _origin(dist, upload)["DomainName"]["Fn::Sub"]
    assert {"POST", "OPTIONS"} <= set(upload["AllowedMethods"])  # the browser's preflight too
    assert {k: v for k, v in upload.items() if k != "PathPattern"} == dist["DefaultCacheBehavior"]
    # A key is hex: never "upload", and never "sync" (not sent to the socket).
    for path in (f"/api/storage/{KEY}", "/api/storage/sync", "/api/storage/a/b"):
        behaviour = _behaviour(dist, path)
        assert behaviour["TargetOriginId"] == "files", path
        assert _origin(dist, behaviour)["DomainName"]["Fn::GetAtt"][0] == "FilesBucket"


def test_files_are_read_only_uncached_and_get_no_viewer_headers(
    template: dict[str, Any],
) -> None:
    """GET/HEAD only; CachingDisabled (a deleted file 404s at once); no origin
    request policy (no viewer query string such as response-content-type
    reaches S3); simple CORS for any page, and nosniff."""
    files = _behaviour(_distribution(template), f"/api/storage/{KEY}")
    assert sorted(files["AllowedMethods"]) == ["GET", "HEAD"]
    assert files["CachePolicyId"] == CACHING_DISABLED
    assert "OriginRequestPolicyId" not in files
    assert files["ResponseHeadersPolicyId"] == CORS_AND_SECURITY_HEADERS
    assert files["ViewerProtocolPolicy"] == "https-only"
    assert "FunctionAssociations" not in files


# ---- the functions -------------------------------------------------------------


def test_every_function_names_the_bucket(template: dict[str, Any]) -> None:
    """The stream function too: the live queries it re-runs may call get_url
    (tests/aws/test_files_harness.py: it needs no S3 access for that)."""
    for rid in ("HttpFunction", "WsFunction", "StreamFunction", "SchedulerFunction"):
        env = props(template, rid)["Environment"]["Variables"]
        assert env["PYCONVEX_FILES_BUCKET"] == {"Ref": "FilesBucket"}, rid
        assert "PYCONVEX_FILES_URL" not in env  # file URLs are the distribution's


def test_only_the_http_and_ws_functions_reach_the_files(template: dict[str, Any]) -> None:
    # and the scheduler function, whose scheduled actions may use ctx.storage
    for rid in ("HttpFunction", "WsFunction", "SchedulerFunction"):
        s3 = {a: r for a, r in grants(template, rid).items() if a.startswith("s3:")}
        assert s3 == {**{a: [FILES_OBJECTS] for a in FILE_ACTIONS}, "s3:ListBucket": [BUCKET_ARN]}
    stream = grants(template, "StreamFunction")
    assert not [a for a in stream if a.startswith("s3:")]


def test_no_s3_statement_is_on_every_resource(template: dict[str, Any]) -> None:
    for role in of_type(template, "AWS::IAM::Role").values():
        for st in statements(role):
            if any(str(a).startswith("s3:") for a in as_list(st["Action"])):
                for resource in as_list(st["Resource"]):
                    assert resource in (FILES_OBJECTS, BUCKET_ARN), st
