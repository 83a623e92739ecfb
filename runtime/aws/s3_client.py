"""The Lambdas' S3 client: the calls the file store makes (`files/s3.py`),
over `signed_http`, called as botocore's low-level client is
(`client.put_object(Bucket=..., Key=..., Body=...)`, the same response
keys) and failing as it does (ClientError with S3's error code, "404" for
a HEAD of nothing; EndpointConnectionError when no answer came).

Why not botocore: a container's first file call built botocore's S3 client
(import, service model, endpoint rules), about 200 ms of a cold start
(`cold_boto3_client_ms`); this one costs what its first request costs.

Addressing: an endpoint the environment configures (AWS_ENDPOINT_URL_S3,
AWS_ENDPOINT_URL: LocalStack, moto) is used path-style
(`<endpoint>/<bucket>/<key>`), which every S3 emulator takes; on AWS a
bucket whose name is a DNS label gets its virtual host
(`<bucket>.s3.<region>.amazonaws.com`), any other the regional endpoint,
path-style. Every body is signed by its
SHA-256, which S3 checks (botocore skips that only over HTTPS with another
checksum header, which these calls do not send).
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote_plus
from xml.sax.saxutils import escape

from .signed_http import (
    THROTTLING_CODES,
    CredentialSource,
    HttpResponse,
    SignedHttp,
    client_error,
    connection_error,
    credentials_from_env,
    endpoint_from_env,
    metadata,
    region_from_env,
)
from .sigv4 import canonical_query

__all__ = ["S3Client"]

_TRANSIENT_CODES = THROTTLING_CODES | {"RequestTimeout", "RequestTimeoutException"}
"""Refusals botocore retries besides 5xx (throttling, a stalled upload)."""

_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
"""A bucket name that can be a virtual host's first label (no dots: TLS)."""

_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed"}
"""The message botocore gives an error answered without a body (HEAD's);
its code is the status."""


def _local(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _xml(body: bytes) -> Any:
    """The parsed document (the stdlib's parser, imported on first use)."""
    from xml.etree import ElementTree

    return ElementTree.fromstring(body)


def _children(element: Any) -> dict[str, str]:
    """An element's leaf children by local name (the last one of a name wins)."""
    return {_local(child.tag): child.text or "" for child in element}


def _error(response: HttpResponse) -> tuple[str, str, dict[str, Any]]:
    """(code, message, rest) of S3's XML error, or the status's code when it
    sent no body (HEAD), as botocore gives them."""
    if response.body:
        try:
            root = _xml(response.body)
        except SyntaxError:  # ElementTree.ParseError: not XML, so the status decides
            root = None
        if root is not None and _local(root.tag) == "Error":
            fields = _children(root)
            return fields.pop("Code", str(response.status)), fields.pop("Message", ""), {}
    return str(response.status), _REASONS.get(response.status, ""), {}


def _retry(response: HttpResponse) -> bool:
    """Worth another attempt: a server error, throttling, a stalled request."""
    if response.status >= 500:
        return True
    return response.status >= 400 and _error(response)[0] in _TRANSIENT_CODES


class S3Client:
    """S3's object calls as botocore's client names them (the file store's:
    PutObject, multipart uploads, GetObject with ranges, HeadObject,
    DeleteObject, ListObjectsV2)."""

    def __init__(
        self,
        *,
        region: str,
        credentials: CredentialSource,
        endpoint: str | None = None,
        max_attempts: int = 5,
    ) -> None:
        """`endpoint`: a configured endpoint (path-style), None for AWS's."""
        self.region = region
        self._credentials = credentials
        self._configured = endpoint.rstrip("/") if endpoint else None
        self._max_attempts = max_attempts
        self._transports: dict[str, SignedHttp] = {}
        self._lock = threading.Lock()
        self.meta = SimpleNamespace(
            endpoint_url=self._configured or self._aws_endpoint(""), region_name=region
        )

    @classmethod
    def from_env(cls) -> S3Client | None:
        """The client the environment describes, or None (botocore's case:
        see `signed_http.py`)."""
        credentials, region = credentials_from_env(), region_from_env()
        if credentials is None or region is None:
            return None
        suffix = _aws_suffix(region)
        endpoint = endpoint_from_env("S3", "s3", region)
        configured = None if endpoint == f"https://s3.{region}.{suffix}" else endpoint
        if configured is None and suffix is None:
            return None
        return cls(region=region, credentials=credentials, endpoint=configured)

    # ---- addressing -------------------------------------------------------------

    def _aws_endpoint(self, bucket: str) -> str:
        suffix = _aws_suffix(self.region)
        if bucket and _DNS_BUCKET.match(bucket):
            return f"https://{bucket}.s3.{self.region}.{suffix}"
        return f"https://s3.{self.region}.{suffix}"

    def address(self, bucket: str, key: str = "") -> tuple[str, str]:
        """(endpoint, path) of the object `key` in `bucket`: path-style at a
        configured endpoint, virtual-hosted on AWS where the name allows."""
        virtual = self._configured is None and _DNS_BUCKET.match(bucket) is not None
        endpoint = self._configured or self._aws_endpoint(bucket)
        path = "/" + quote(key, safe="/~")
        return endpoint, path if virtual else f"/{quote(bucket, safe='')}{path}"

    def _route(self, bucket: str, key: str = "") -> tuple[SignedHttp, str]:
        """The transport for `bucket` and the request's path for `key`."""
        endpoint, path = self.address(bucket, key)
        with self._lock:
            http = self._transports.get(endpoint)
            if http is None:
                http = self._transports[endpoint] = SignedHttp(
                    endpoint,
                    region=self.region,
                    service="s3",
                    credentials=self._credentials,
                    max_attempts=self._max_attempts,
                )
        return http, path

    def _call(
        self,
        operation: str,
        method: str,
        bucket: str,
        key: str = "",
        *,
        query: dict[str, str] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> HttpResponse:
        http, path = self._route(bucket, key)
        try:
            response = http.request(
                method,
                path,
                body,
                headers or {},
                retry=_retry,
                query=canonical_query(query) if query else "",
                stream=stream,
            )
        except OSError as e:
            raise connection_error(http.endpoint, e) from e
        if response.status >= 300:
            raise client_error(operation, response, _error(response))
        return response

    # ---- the calls --------------------------------------------------------------

    def put_object(
        self, *, Bucket: str, Key: str, Body: bytes, ContentType: str | None = None
    ) -> dict[str, Any]:
        headers = {"Content-Type": ContentType} if ContentType else {}
        r = self._call("PutObject", "PUT", Bucket, Key, body=bytes(Body), headers=headers)
        return {"ETag": r.headers.get("etag", ""), "ResponseMetadata": metadata(r)}

    def create_multipart_upload(
        self, *, Bucket: str, Key: str, ContentType: str | None = None
    ) -> dict[str, Any]:
        headers = {"Content-Type": ContentType} if ContentType else {}
        r = self._call(
            "CreateMultipartUpload", "POST", Bucket, Key, query={"uploads": ""}, headers=headers
        )
        fields = _children(_xml(r.body))
        return {
            "Bucket": fields.get("Bucket", Bucket),
            "Key": fields.get("Key", Key),
            "UploadId": fields["UploadId"],
            "ResponseMetadata": metadata(r),
        }

    def upload_part(
        self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes
    ) -> dict[str, Any]:
        r = self._call(
            "UploadPart",
            "PUT",
            Bucket,
            Key,
            query={"partNumber": str(PartNumber), "uploadId": UploadId},
            body=bytes(Body),
        )
        return {"ETag": r.headers.get("etag", ""), "ResponseMetadata": metadata(r)}

    def complete_multipart_upload(
        self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: dict[str, Any]
    ) -> dict[str, Any]:
        parts = "".join(
            f"<Part><ETag>{escape(str(p['ETag']))}</ETag>"
            f"<PartNumber>{int(p['PartNumber'])}</PartNumber></Part>"
            for p in MultipartUpload.get("Parts", [])
        )
        body = (
            '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{parts}</CompleteMultipartUpload>"
        ).encode()
        r = self._call(
            "CompleteMultipartUpload",
            "POST",
            Bucket,
            Key,
            query={"uploadId": UploadId},
            body=body,
            headers={"Content-Type": "application/xml"},
        )
        root = _xml(r.body)
        if _local(root.tag) == "Error":  # S3 may refuse after answering 200
            raise client_error("CompleteMultipartUpload", r, _error(r))
        fields = _children(root)
        return {"ETag": fields.get("ETag", ""), "Key": Key, "ResponseMetadata": metadata(r)}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        r = self._call("AbortMultipartUpload", "DELETE", Bucket, Key, query={"uploadId": UploadId})
        return {"ResponseMetadata": metadata(r)}

    def get_object(self, *, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:
        """The object's body is a stream: read it, then close it."""
        headers = {"Range": Range} if Range else {}
        r = self._call("GetObject", "GET", Bucket, Key, headers=headers, stream=True)
        out = _object_headers(r)
        out["Body"] = r.stream
        if "content-range" in r.headers:
            out["ContentRange"] = r.headers["content-range"]
        return out

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return _object_headers(self._call("HeadObject", "HEAD", Bucket, Key))

    def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        r = self._call("DeleteObject", "DELETE", Bucket, Key)
        return {"ResponseMetadata": metadata(r)}

    def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str | None = None,
        ContinuationToken: str | None = None,
        MaxKeys: int | None = None,
    ) -> dict[str, Any]:
        query = {"list-type": "2", "encoding-type": "url"}
        if Prefix:
            query["prefix"] = Prefix
        if ContinuationToken:
            query["continuation-token"] = ContinuationToken
        if MaxKeys is not None:
            query["max-keys"] = str(MaxKeys)
        r = self._call("ListObjectsV2", "GET", Bucket, query=query)
        root = _xml(r.body)
        fields = _children(root)
        decode = fields.get("EncodingType") == "url"
        contents = []
        for element in root:
            if _local(element.tag) != "Contents":
                continue
            obj = _children(element)
            key = unquote_plus(obj["Key"]) if decode else obj["Key"]
            contents.append(
                {
                    "Key": key,
                    "LastModified": datetime.fromisoformat(obj["LastModified"]),
                    "ETag": obj.get("ETag", ""),
                    "Size": int(obj.get("Size", "0")),
                }
            )
        out: dict[str, Any] = {
            "IsTruncated": fields.get("IsTruncated") == "true",
            "KeyCount": int(fields.get("KeyCount", len(contents))),
            "ResponseMetadata": metadata(r),
        }
        if contents:
            out["Contents"] = contents
        if fields.get("NextContinuationToken"):
            out["NextContinuationToken"] = fields["NextContinuationToken"]
        return out

    def close(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for http in transports:
            http.close()


def _aws_suffix(region: str) -> str | None:
    """The domain of `region`'s endpoints (None: a partition botocore knows
    better, e.g. GovCloud's FIPS or the ISO regions)."""
    if region.startswith("cn-"):
        return "amazonaws.com.cn"
    if region.startswith(("us-iso", "eu-isoe")):
        return None
    return "amazonaws.com"


def _object_headers(r: HttpResponse) -> dict[str, Any]:
    """HeadObject's and GetObject's fields from the answer's headers."""
    out: dict[str, Any] = {
        "ContentLength": int(r.headers.get("content-length", "0")),
        "ETag": r.headers.get("etag", ""),
        "ResponseMetadata": metadata(r),
    }
    if "content-type" in r.headers:
        out["ContentType"] = r.headers["content-type"]
    if "last-modified" in r.headers:
        from email.utils import parsedate_to_datetime

        out["LastModified"] = parsedate_to_datetime(r.headers["last-modified"])
    return out
