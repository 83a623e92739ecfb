"""Upload URL tokens: signed by the platform, checked before a byte is read.

A token is `<body>.<mac>`, both base64url: the body is a version byte, 16
random bytes (the nonce) and the expiry (seconds since the epoch, 8 bytes);
the mac is HMAC-SHA256 over the body with the backend's upload key (a
platform secret in its store), cut to 16 bytes. Anyone can read a token;
only the backend can make one, so a tampered token fails its mac.

Single use is not the token's job: the upload's transaction records the
nonce as used (`storage.py`), so two uploads racing on one URL conflict and
one of them loses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from runtime.errors import PlatformError

__all__ = ["UploadRefused", "UploadTicket", "UploadTokens"]

_VERSION = b"\x01"
_BODY = 1 + 16 + 8
_MAC = 16


class UploadRefused(PlatformError):
    """An upload URL the platform will not take: bad, tampered, expired or used."""

    code = "INVALID_UPLOAD_URL"
    status = 400

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """What a verified token grants: one upload, until `expires` (epoch seconds)."""

    nonce: bytes
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UploadTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, nonce: bytes, expires: int) -> str:
        if len(nonce) != 16:
            raise ValueError("an upload token's nonce is 16 bytes")
        body = _VERSION + nonce + expires.to_bytes(8, "big")
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def check(self, token: object, now: float) -> UploadTicket:
        """The ticket a token grants, or UploadRefused saying why not."""
        if not isinstance(token, str) or not token:
            raise UploadRefused(
                400,
                "MISSING_UPLOAD_TOKEN",
                "this upload URL has no token: upload to the URL that "
                "ctx.storage.generate_upload_url() returned, unchanged",
            )
        body_text, dot, mac_text = token.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            body, mac = b"", b""
        if not dot or len(body) != _BODY or body[:1] != _VERSION or len(mac) != _MAC:
            raise UploadRefused(
                400,
                "INVALID_UPLOAD_TOKEN",
                "this upload URL's token is malformed: upload to the URL that "
                "ctx.storage.generate_upload_url() returned, unchanged",
            )
        if not hmac.compare_digest(mac, self._mac(body)):
            raise UploadRefused(
                403,
                "INVALID_UPLOAD_TOKEN",
                "this upload URL's token was not signed by this deployment (altered, or "
                "from another deployment); generate a new one with "
                "ctx.storage.generate_upload_url()",
            )
        expires = int.from_bytes(body[17:], "big")
        if now >= expires:
            raise UploadRefused(
                410,
                "UPLOAD_URL_EXPIRED",
                "this upload URL has expired (upload URLs last an hour); generate a new "
                "one with ctx.storage.generate_upload_url()",
            )
        return UploadTicket(body[1:17], expires)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC]
