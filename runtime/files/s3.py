"""The S3 blob adapter (AWS shell), on an injected S3 client: botocore's, or
the Lambdas' lean one (`runtime/aws/s3_client.py`), called the same way.

Puts are streamed: a blob up to one part is a single PutObject; a larger one is a
multipart upload, one part buffered at a time, aborted on any failure so no half blob
and no orphan parts remain. Reads are (ranged) GetObject streams.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from runtime.files.port import BlobInfo, b64_sha256, check_key, is_key
from runtime.limits import BLOB_S3_PART_SIZE

_MISSING = {"404", "NoSuchKey", "NotFound", "InvalidRange"}


class S3BlobStore:
    """Blobs as objects `<prefix><key>` in `bucket`."""

    def __init__(
        self, client: Any, bucket: str, prefix: str = "", part_size: int = BLOB_S3_PART_SIZE
    ) -> None:
        self._s3 = client
        self._bucket = bucket
        self._prefix = prefix
        self._part_size = part_size

    def _name(self, key: str) -> str:
        return self._prefix + check_key(key)

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> BlobInfo:
        """The object gets `content_type` as its Content-Type, so S3 (and CloudFront
        in front of it) serves the file with it."""
        name = self._name(key)
        typed: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        digest = hashlib.sha256()
        size = 0
        buf = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buf += chunk
                while len(buf) >= self._part_size:
                    if upload_id is None:
                        upload_id = self._s3.create_multipart_upload(
                            Bucket=self._bucket, Key=name, **typed
                        )["UploadId"]
                    part = bytes(buf[: self._part_size])
                    del buf[: self._part_size]
                    n = len(parts) + 1
                    r = self._s3.upload_part(
                        Bucket=self._bucket, Key=name, UploadId=upload_id, PartNumber=n, Body=part
                    )
                    parts.append({"ETag": r["ETag"], "PartNumber": n})
            if upload_id is None:
                self._s3.put_object(Bucket=self._bucket, Key=name, Body=bytes(buf), **typed)
            else:
                if buf:
                    n = len(parts) + 1
                    r = self._s3.upload_part(
                        Bucket=self._bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=n,
                        Body=bytes(buf),
                    )
                    parts.append({"ETag": r["ETag"], "PartNumber": n})
                self._s3.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            if upload_id is not None:
                self._s3.abort_multipart_upload(Bucket=self._bucket, Key=name, UploadId=upload_id)
            raise
        return BlobInfo(size=size, sha256=b64_sha256(digest.digest()))

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO | None:
        name = self._name(key)
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Key": name}
        if start or end is not None:
            total = self.size(key)
            if total is None:
                return None
            stop = total if end is None else min(end, total)
            if start >= stop:
                return io.BytesIO(b"")
            kwargs["Range"] = f"bytes={start}-{stop - 1}"
        try:
            body: BinaryIO = self._s3.get_object(**kwargs)["Body"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return body

    def size(self, key: str) -> int | None:
        try:
            r = self._s3.head_object(Bucket=self._bucket, Key=self._name(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return int(r["ContentLength"])

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=self._name(key))

    def keys(self, written_before: float) -> Iterator[str]:
        more: dict[str, str] = {}
        while True:
            page = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=self._prefix, **more)
            for obj in page.get("Contents", []):
                key = str(obj["Key"])[len(self._prefix) :]
                if is_key(key) and obj["LastModified"].timestamp() < written_before:
                    yield key
            if not page.get("IsTruncated"):
                return
            more = {"ContinuationToken": page["NextContinuationToken"]}

    def close(self) -> None:
        """The injected client belongs to the caller."""
