"""runtime/auth: validating `providers` from functions/auth.config.py, each refusal naming entry and field."""

from __future__ import annotations

import pytest

from runtime.auth import AuthConfigError, Provider, parse_providers
from runtime.auth.providers import OIDC_ALGORITHMS

SOURCE = "functions/auth.config.py"


def error(value: object) -> str:
    with pytest.raises(AuthConfigError) as caught:
        parse_providers(value, SOURCE)
    assert caught.value.code == "AUTH_CONFIG_INVALID"
    return caught.value.message


def test_oidc_and_custom_jwt_entries() -> None:
    providers = parse_providers(
        [
            {"domain": "https://clerk.example.com/", "applicationID": "convex"},
            {
                "type": "customJwt",
                "issuer": "https://auth.example.com",
                "jwks": "https://auth.example.com/jwks.json",
                "algorithm": "ES256",
            },
        ],
        SOURCE,
    )
    assert providers == [
        Provider(
            kind="oidc",
            issuer="https://clerk.example.com",
            audience="convex",
            algorithms=OIDC_ALGORITHMS,
            discovery_url="https://clerk.example.com/.well-known/openid-configuration",
        ),
        Provider(
            kind="customJwt",
            issuer="https://auth.example.com",
            audience=None,
            algorithms=("ES256",),
            jwks_url="https://auth.example.com/jwks.json",
        ),
    ]
    assert not {"none", "HS256", "HS384", "HS512"} & set(OIDC_ALGORITHMS)
    assert parse_providers([], SOURCE) == []


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:1234"]
)
def test_http_is_accepted_on_loopback(host: str) -> None:
    assert parse_providers([{"domain": host, "applicationID": "a"}], SOURCE)[0].issuer == host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"domain": "x"}, "`providers` must be a list of provider dicts, got dict"),
        (["https://x"], "providers[0] must be a dict"),
        ([{"applicationID": "a"}], "providers[0].domain must be a non-empty string"),
        (
            [{"domain": "https://x.example"}],
            "providers[0].applicationID must be a non-empty string",
        ),
        (
            [
                {"domain": "https://x.example", "applicationID": "a"},
                {"domain": "https://y", "applicationID": ""},
            ],
            "providers[1].applicationID must be a non-empty string",
        ),
        (
            [{"domain": "http://x.example", "applicationID": "a"}],
            "providers[0].domain must use https://",
        ),
        (
            [{"domain": "ftp://x.example", "applicationID": "a"}],
            "providers[0].domain must be an https:// URL",
        ),
        (
            [{"domain": "x.example", "applicationID": "a"}],
            "providers[0].domain must be an https:// URL",
        ),
        (
            [{"type": "saml", "domain": "https://x"}],
            "providers[0].type: unknown provider type 'saml'",
        ),
        (
            [{"domain": "https://x.example", "applicationId": "a"}],
            "providers[0]: unknown field(s) 'applicationId'",
        ),
        (
            [
                {
                    "type": "customJwt",
                    "issuer": "https://i",
                    "jwks": "https://i/j",
                    "algorithm": "HS256",
                }
            ],
            "providers[0].algorithm must be 'RS256' or 'ES256'",
        ),
        (
            [{"type": "customJwt", "issuer": "https://i", "algorithm": "RS256"}],
            "providers[0].jwks must be a non-empty string",
        ),
        (
            [
                {
                    "type": "customJwt",
                    "issuer": "https://i",
                    "jwks": "http://i.example/j",
                    "algorithm": "RS256",
                }
            ],
            "providers[0].jwks must use https://",
        ),
        (
            [{"type": "customJwt", "jwks": "https://i/j", "algorithm": "RS256"}],
            "providers[0].issuer must be a non-empty string",
        ),
    ],
)
def test_refusals_name_the_entry_and_field(value: object, expected: str) -> None:
    message = error(value)
    assert message.startswith(f"{SOURCE}: ")
    assert expected in message
