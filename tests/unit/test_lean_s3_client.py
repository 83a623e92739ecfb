"""The Lambdas' lean S3 client (runtime/aws/s3_client.py) where moto's
server cannot show it: signatures equal botocore's S3 signer's, retries and
refusals against a scripted HTTP/1.1 server (moto's closes every
connection), a streamed body's connection kept alive only when read to its
end, and the addressing the environment decides. Its calls against a real
S3 API (moto's server, LocalStack) are in tests/conformance/."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from runtime.aws.clients import LazyClient
from runtime.aws.s3_client import S3Client
from runtime.aws.signed_http import StaticCredentials
from runtime.aws.sigv4 import Credentials, canonical_query, sign
from tests.support.scripted_http import Script, scripted_server

_ERROR = "<?xml version='1.0'?><Error><Code>{}</Code><Message>{}</Message></Error>"


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("token", [None, "session-token"])
def test_a_signature_is_botocores_s3_signers(scheme: str, token: str | None) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotocoreCredentials

    path = "/bucket/a%20b/%C3%BC%2Bc~d"
    params = {"partNumber": "3", "uploadId": "abc/def+g=="}
    query = canonical_query(params)
    body = b"part  bytes"
    headers = {"Content-Type": "text/plain"}
    request = AWSRequest(
        method="PUT",
        url=f"{scheme}://127.0.0.1:9000{path}?{query}",
        data=body,
        headers=dict(headers),
    )
    S3SigV4Auth(BotocoreCredentials("AKID", "secret/key", token), "s3", "eu-west-1").add_auth(
        request
    )
    mine = sign(
        method="PUT",
        host="127.0.0.1:9000",
        path=path,
        headers=headers,
        body=body,
        credentials=Credentials("AKID", "secret/key", token),
        region="eu-west-1",
        service="s3",
        amz_date=request.headers["X-Amz-Date"],
        query=query,
    )
    assert mine["X-Amz-Content-Sha256"] == request.headers["X-Amz-Content-SHA256"]
    assert mine["Authorization"] == request.headers["Authorization"]


def test_a_canonical_query_is_sorted_and_encoded() -> None:
    assert canonical_query({"uploads": ""}) == "uploads="
    assert canonical_query({"prefix": "a b/c", "list-type": "2"}) == "list-type=2&prefix=a%20b%2Fc"


# ---- against a scripted server -------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[Script, S3Client]]:
    with scripted_server() as (script, endpoint):
        script.crc32 = False
        client = S3Client(
            region="us-east-1",
            credentials=StaticCredentials(Credentials("AKID", "secret")),
            endpoint=endpoint,
        )
        client._route("b")[0].base_delay = 0.001
        try:
            yield script, client
        finally:
            client.close()


def test_requests_are_path_style_signed_and_shaped_as_botocores(
    served: tuple[Script, S3Client],
) -> None:
    s, client = served
    s.answer(200, b"", ETag='"e1"')
    s.answer(
        200,
        b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k 1</Key>"
        b"<UploadId>up/1</UploadId></InitiateMultipartUploadResult>",
    )
    s.answer(
        200, b'<CompleteMultipartUploadResult><ETag>"e-2"</ETag></CompleteMultipartUploadResult>'
    )
    assert client.put_object(Bucket="b", Key="k 1", Body=b"abc", ContentType="a/b")["ETag"] == (
        '"e1"'
    )
    assert client.create_multipart_upload(Bucket="b", Key="k 1")["UploadId"] == "up/1"
    parts = {"Parts": [{"ETag": '"p1"', "PartNumber": 1}, {"ETag": '"p<2>"', "PartNumber": 2}]}
    done = client.complete_multipart_upload(
        Bucket="b", Key="k 1", UploadId="up/1", MultipartUpload=parts
    )
    assert done["ETag"] == '"e-2"'
    (put, create, complete) = s.seen
    assert s.methods == ["PUT", "POST", "POST"]
    assert put[0] == "/b/k%201" and put[2] == b"abc" and put[1]["Content-Type"] == "a/b"
    assert put[1]["X-Amz-Content-Sha256"] == hashlib.sha256(b"abc").hexdigest()  # S3 checks it
    assert "Signature=" in put[1]["Authorization"] and "s3/aws4_request" in put[1]["Authorization"]
    assert create[0] == "/b/k%201?uploads="
    assert complete[0] == "/b/k%201?uploadId=up%2F1"
    assert complete[2].endswith(
        b'<Part><ETag>"p1"</ETag><PartNumber>1</PartNumber></Part>'
        b'<Part><ETag>"p&lt;2&gt;"</ETag><PartNumber>2</PartNumber></Part>'
        b"</CompleteMultipartUpload>"
    )


def test_throttling_and_server_errors_are_retried_refusals_are_not(
    served: tuple[Script, S3Client],
) -> None:
    s, client = served
    s.answer(503, _ERROR.format("SlowDown", "Reduce your request rate.").encode())
    s.answer(400, _ERROR.format("RequestTimeout", "not read from in time").encode())
    s.answer(204, b"")
    assert client.delete_object(Bucket="b", Key="k")["ResponseMetadata"]["RetryAttempts"] == 2
    s.answer(403, _ERROR.format("AccessDenied", "Access Denied").encode())
    with pytest.raises(ClientError) as caught:
        client.delete_object(Bucket="b", Key="k")
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("AccessDenied", "Access Denied")
    assert caught.value.operation_name == "DeleteObject" and len(s.seen) == 4
    s.answer(404, b"")
    with pytest.raises(ClientError) as caught:
        client.head_object(Bucket="b", Key="k")
    assert caught.value.response["Error"] == {"Code": "404", "Message": "Not Found"}


def test_a_complete_refused_after_a_200_is_an_error(served: tuple[Script, S3Client]) -> None:
    s, client = served
    s.answer(200, _ERROR.format("InternalError", "try again").encode())
    with pytest.raises(ClientError) as caught:
        client.complete_multipart_upload(
            Bucket="b", Key="k", UploadId="u", MultipartUpload={"Parts": []}
        )
    assert caught.value.response["Error"]["Code"] == "InternalError"


def test_a_streamed_body_gives_its_connection_back_only_when_read_to_the_end(
    served: tuple[Script, S3Client],
) -> None:
    s, client = served
    data = bytes(range(256)) * 400
    for _ in range(2):
        s.answer(200, data)
    partly = client.get_object(Bucket="b", Key="k")["Body"]
    assert partly.read(10) == data[:10]
    partly.close()  # most of it unread: the connection is closed, not reused
    whole = client.get_object(Bucket="b", Key="k", Range="bytes=0-")
    with whole["Body"] as body:
        assert body.read() == data and whole["ContentLength"] == len(data)
    s.answer(200, b"1234567")  # a HEAD: its length is sent, not its body
    assert client.head_object(Bucket="b", Key="k")["ContentLength"] == 7
    assert s.seen[1][1]["Range"] == "bytes=0-"
    assert s.ports[1] != s.ports[0]  # a new connection after the abandoned body
    assert s.ports[2] == s.ports[1]  # the body read to its end: the same one again


# ---- the environment -----------------------------------------------------------------


def test_the_environment_decides_the_client_and_its_addressing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert S3Client.from_env() is None  # no region
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    aws = S3Client.from_env()
    assert aws is not None
    assert aws.address("my-files", "api/storage/k 1") == (
        "https://my-files.s3.eu-west-1.amazonaws.com",
        "/api/storage/k%201",
    )
    assert aws.address("dotted.bucket", "k") == (  # no virtual host: TLS names
        "https://s3.eu-west-1.amazonaws.com",
        "/dotted.bucket/k",
    )
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    china = S3Client.from_env()
    assert china is not None and china.address("files")[0] == (
        "https://files.s3.cn-north-1.amazonaws.com.cn"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566/")
    local = S3Client.from_env()
    assert local is not None and local.address("files", "k") == (
        "http://127.0.0.1:4566",
        "/files/k",
    )
    lazy = LazyClient("s3")
    assert not lazy.made
    assert lazy.meta.endpoint_url == "http://127.0.0.1:4566"  # made on this first use
    assert isinstance(lazy._client, S3Client)
    monkeypatch.setenv("AWS_PROFILE", "dev")  # only botocore reads profiles
    assert S3Client.from_env() is None
