"""Blob storage for `ctx.storage`: a port (`BlobStore`) and its adapters (local disk, S3)."""

from runtime.files.port import BadBlobKey, BlobInfo, BlobStore, check_key, new_key

__all__ = ["BadBlobKey", "BlobInfo", "BlobStore", "check_key", "new_key"]
