"""A local OIDC provider for the auth tests: discovery document and JWKS on loopback.

`running_oidc_provider()` serves, from a stdlib HTTP server on 127.0.0.1 in
a thread (stopped when the `with` ends):
- `/.well-known/openid-configuration` (issuer, jwks_uri),
- `/jwks.json` (the current public keys: one RSA, one EC P-256),
and counts the requests for each. Keys are generated per provider (per
run); `rotate()` replaces them mid-test, `down = True` makes every answer a
503, `redirects[path] = url` answers that path with a 302 to url.
`token(**claims, alg=..., kid=..., key=...)` signs with PyJWT;
`forged_hs256(...)` and `unsigned(...)` build the forgeries a verifier must
refuse. Claims default to a valid token for this provider and audience; a
claim given as None is left out.

Use (a fixture in the test module):

    @pytest.fixture
    def provider() -> Iterator[OidcProvider]:
        with running_oidc_provider() as p:
            yield p

    # functions/auth.config.py: providers = [<p.oidc_config()>]
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["OidcProvider", "SigningKey", "running_oidc_provider"]

AUDIENCE = "pyconvex-tests"


@dataclass
class SigningKey:
    """A private key, its kid and its algorithm."""

    kid: str
    alg: str
    private: Any

    @staticmethod
    def rsa() -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return SigningKey(f"rsa-{uuid.uuid4().hex[:8]}", "RS256", key)

    @staticmethod
    def ec() -> SigningKey:
        return SigningKey(
            f"ec-{uuid.uuid4().hex[:8]}", "ES256", ec.generate_private_key(ec.SECP256R1())
        )

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK with its kid, alg and use."""
        algorithm = (
            jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        )
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


@dataclass
class OidcProvider:
    """The running provider: its URL (= issuer), keys and request counts."""

    url: str
    audience: str = AUDIENCE
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.rsa(), SigningKey.ec()])
    down: bool = False
    redirects: dict[str, str] = field(default_factory=dict)
    fetches: dict[str, int] = field(default_factory=lambda: {"discovery": 0, "jwks": 0})
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks.json"

    @property
    def jwks_fetches(self) -> int:
        with self._lock:
            return self.fetches["jwks"]

    @property
    def discovery_fetches(self) -> int:
        with self._lock:
            return self.fetches["discovery"]

    def oidc_config(self, audience: str | None = None) -> dict[str, str]:
        """This provider as an OIDC entry of auth.config.py's `providers`."""
        return {"domain": self.url, "applicationID": audience or self.audience}

    def custom_jwt_config(
        self, algorithm: str = "RS256", audience: str | None = None
    ) -> dict[str, str]:
        """This provider as a customJwt entry of auth.config.py's `providers`."""
        return {
            "type": "customJwt",
            "issuer": self.url,
            "jwks": self.jwks_url,
            "algorithm": algorithm,
            "applicationID": audience or self.audience,
        }

    def key_for(self, alg: str) -> SigningKey:
        """The current key for `alg` ("RS256" or "ES256")."""
        return next(k for k in self.keys if k.alg == alg)

    def rotate(self) -> None:
        """New keys with new kids; the old ones leave the JWKS (tokens signed with them stop verifying)."""
        self.keys = [SigningKey.rsa(), SigningKey.ec()]

    def claims(self, **claims: Any) -> dict[str, Any]:
        """A valid claim set for this provider, with `claims` over it (None removes one)."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": self.audience,
            "iat": now,
            "exp": now + 3600,
        }
        base.update(claims)
        return {k: v for k, v in base.items() if v is not None}

    def token(
        self,
        *,
        alg: str = "RS256",
        kid: str | None = "",
        key: SigningKey | Any | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with PyJWT: by default with this provider's current key for `alg`.

        `kid=""` (default): the signing key's kid; None: no kid header; any other: that kid.
        `key`: another SigningKey (e.g. from another provider or before a rotation) or a raw key."""
        signing = key if key is not None else self.key_for(alg)
        if isinstance(signing, SigningKey):
            private, default_kid = signing.private, signing.kid
        else:
            private, default_kid = signing, None
        headers = {} if kid is None else {"kid": kid or default_kid}
        headers = {k: v for k, v in headers.items() if v}
        return jwt.encode(self.claims(**claims), private, algorithm=alg, headers=headers or None)

    def forged_hs256(self, secret: bytes | None = None, **claims: Any) -> str:
        """An HS256 token whose HMAC secret is the RSA public key's PEM (the classic key-confusion forgery).

        Built by hand: PyJWT itself refuses to use a public key as an HMAC secret."""
        rsa_key = self.key_for("RS256")
        header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
        signing_input = f"{_b64(header)}.{_b64(self.claims(**claims))}".encode()
        mac = hmac.new(secret or rsa_key.public_pem(), signing_input, hashlib.sha256).digest()
        return f"{signing_input.decode()}.{_b64_bytes(mac)}"

    def unsigned(self, **claims: Any) -> str:
        """An `alg: none` token (no signature)."""
        header = {"alg": "none", "typ": "JWT", "kid": self.key_for("RS256").kid}
        return f"{_b64(header)}.{_b64(self.claims(**claims))}."

    # --- what the HTTP server answers ---

    def _answer(self, path: str) -> tuple[int, dict[str, Any]]:
        if self.down:
            return 503, {"error": "provider down (test)"}
        if path in self.redirects:
            return 302, {"location": self.redirects[path]}
        with self._lock:
            if path == "/.well-known/openid-configuration":
                self.fetches["discovery"] += 1
                return 200, {
                    "issuer": self.issuer,
                    "jwks_uri": self.jwks_url,
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                }
            if path == "/jwks.json":
                self.fetches["jwks"] += 1
                return 200, {"keys": [k.jwk() for k in self.keys]}
        return 404, {"error": f"no such path {path}"}


def _b64_bytes(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64(value: dict[str, Any]) -> str:
    return _b64_bytes(json.dumps(value, separators=(",", ":")).encode())


@contextlib.contextmanager
def running_oidc_provider(audience: str = AUDIENCE) -> Iterator[OidcProvider]:
    """A provider on a free loopback port, stopped (server closed, thread joined) on exit."""
    provider_box: list[OidcProvider] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = provider_box[0]._answer(self.path.split("?")[0])
            data = json.dumps(body).encode()
            self.send_response(status)
            if status == 302:
                self.send_header("Location", body["location"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    provider = OidcProvider(url=f"http://127.0.0.1:{server.server_address[1]}", audience=audience)
    provider_box.append(provider)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="oidc-provider", daemon=True
    )
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
