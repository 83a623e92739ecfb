"""runtime/auth: token verification against a local OIDC provider on loopback (real HTTP, real keys).

Each refusal has its own reason in the message; key rotation works after one
re-fetch; a flood of unknown kids re-fetches at a bounded rate; the identity
has Convex's field names; a bad auth.config.py is refused with the entry and
field named. The clock is injected so the rate and cache limits are checked
without waiting.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.auth import (
    Authenticator,
    Unauthenticated,
    parse_providers,
)
from runtime.limits import (
    AUTH_CLOCK_LEEWAY_SECONDS,
    AUTH_FETCH_RETRY_SECONDS,
    AUTH_JWKS_MAX_AGE_SECONDS,
    AUTH_JWKS_REFETCH_SECONDS,
)
from tests.support.oidc import OidcProvider, SigningKey, running_oidc_provider


class Clock:
    """A clock the test moves by hand, starting at the real time (tokens carry real times)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_oidc_provider() as p:
        yield p


@pytest.fixture
def clock() -> Clock:
    return Clock()


def authenticator(clock: Clock, *entries: dict[str, Any]) -> Authenticator:
    return Authenticator(parse_providers(list(entries), "functions/auth.config.py"), clock=clock)


@pytest.fixture
def auth(provider: OidcProvider, clock: Clock) -> Authenticator:
    return authenticator(clock, provider.oidc_config())


def refused(auth: Authenticator, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        auth.verify(token)
    assert caught.value.code == "Unauthenticated"
    return caught.value.message


# --- accepted ---------------------------------------------------------------------


def test_oidc_rs256_and_es256_tokens_verify(provider: OidcProvider, auth: Authenticator) -> None:
    for alg in ("RS256", "ES256"):
        identity = auth.verify(provider.token(alg=alg, sub="u-42"))
        assert identity["tokenIdentifier"] == f"{provider.issuer}|u-42"
        assert identity["subject"] == "u-42"
        assert identity["issuer"] == provider.issuer
    assert provider.discovery_fetches == 1
    assert provider.jwks_fetches == 1


def test_custom_jwt_provider_verifies_with_its_one_algorithm(
    provider: OidcProvider, clock: Clock
) -> None:
    auth = authenticator(clock, provider.custom_jwt_config("ES256"))
    assert auth.verify(provider.token(alg="ES256"))["subject"] == "user-1"
    assert "not allowed for the provider" in refused(auth, provider.token(alg="RS256"))
    assert provider.discovery_fetches == 0  # customJwt names its key set


def test_custom_jwt_without_application_id_checks_no_audience(
    provider: OidcProvider, clock: Clock
) -> None:
    entry = provider.custom_jwt_config("RS256")
    del entry["applicationID"]
    auth = authenticator(clock, entry)
    assert auth.verify(provider.token(aud="anything"))["subject"] == "user-1"
    assert auth.verify(provider.token(aud=None))["subject"] == "user-1"


def test_issuer_matches_up_to_a_trailing_slash(provider: OidcProvider, clock: Clock) -> None:
    auth = authenticator(clock, {"domain": provider.url + "/", "applicationID": provider.audience})
    identity = auth.verify(provider.token(iss=provider.issuer + "/"))
    assert identity["issuer"] == provider.issuer + "/"


def test_expiry_within_the_leeway_is_accepted(
    provider: OidcProvider, auth: Authenticator, clock: Clock
) -> None:
    token = provider.token(exp=int(clock.now) - AUTH_CLOCK_LEEWAY_SECONDS // 2)
    assert auth.verify(token)["subject"] == "user-1"
    token = provider.token(nbf=int(clock.now) + AUTH_CLOCK_LEEWAY_SECONDS // 2)
    assert auth.verify(token)["subject"] == "user-1"


def test_a_token_without_kid_uses_the_only_key(provider: OidcProvider, clock: Clock) -> None:
    # The JWKS holds an RSA and an EC key; a customJwt ES256 provider can use only the EC one.
    only_ec = authenticator(clock, provider.custom_jwt_config("ES256"))
    assert only_ec.verify(provider.token(alg="ES256", kid=None))["subject"] == "user-1"
    both = authenticator(clock, provider.oidc_config())
    assert "no key id (kid)" in refused(both, provider.token(kid=None))


# --- refused, each with its reason --------------------------------------------------


def test_expired(provider: OidcProvider, auth: Authenticator, clock: Clock) -> None:
    message = refused(auth, provider.token(exp=int(clock.now) - AUTH_CLOCK_LEEWAY_SECONDS - 60))
    assert message.startswith("Token expired")


def test_expired_by_the_clock_moving_on(
    provider: OidcProvider, auth: Authenticator, clock: Clock
) -> None:
    token = provider.token(exp=int(clock.now) + 60)
    auth.verify(token)
    clock.now += 60 + AUTH_CLOCK_LEEWAY_SECONDS + 1
    assert refused(auth, token).startswith("Token expired")


def test_not_yet_valid(provider: OidcProvider, auth: Authenticator, clock: Clock) -> None:
    later = int(clock.now) + AUTH_CLOCK_LEEWAY_SECONDS + 120
    assert "not yet valid" in refused(auth, provider.token(nbf=later))
    assert "not yet valid" in refused(auth, provider.token(iat=later))


def test_wrong_audience(provider: OidcProvider, auth: Authenticator) -> None:
    message = refused(auth, provider.token(aud="another-app"))
    assert message.startswith("Wrong audience")
    assert "pyconvex-tests" in message


def test_a_token_for_another_providers_audience(provider: OidcProvider, clock: Clock) -> None:
    # Two apps on one issuer: each audience verifies, a third is refused for its audience.
    auth = authenticator(clock, provider.oidc_config("app-a"), provider.oidc_config("app-b"))
    assert auth.verify(provider.token(aud="app-a"))["subject"] == "user-1"
    assert auth.verify(provider.token(aud="app-b"))["subject"] == "user-1"
    assert refused(auth, provider.token(aud="app-c")).startswith("Wrong audience")


def test_unknown_issuer(provider: OidcProvider, auth: Authenticator) -> None:
    message = refused(auth, provider.token(iss="https://evil.example"))
    assert message.startswith("Unknown issuer 'https://evil.example'")
    assert provider.issuer in message
    assert provider.jwks_fetches == 0  # nothing fetched for a stranger


def test_no_provider_configured_refuses_every_token(provider: OidcProvider, clock: Clock) -> None:
    auth = authenticator(clock)
    assert not auth.configured
    assert "declares no provider" in refused(auth, provider.token())
    assert authenticator(clock, provider.oidc_config()).configured


def test_bad_signature(provider: OidcProvider, auth: Authenticator) -> None:
    # Signed by a stranger's key that claims the provider's kid.
    impostor = SigningKey.rsa()
    token = provider.token(key=impostor, kid=provider.key_for("RS256").kid)
    assert refused(auth, token).startswith("Bad signature")


def test_tampered_claims_break_the_signature(provider: OidcProvider, auth: Authenticator) -> None:
    header, _, signature = provider.token(sub="alice").split(".")
    _, forged_claims, _ = provider.token(sub="admin").split(".")
    assert refused(auth, f"{header}.{forged_claims}.{signature}").startswith("Bad signature")


def test_alg_none(provider: OidcProvider, auth: Authenticator) -> None:
    assert "'none' is not allowed" in refused(auth, provider.unsigned())


def test_hs256_signed_with_the_public_key(provider: OidcProvider, auth: Authenticator) -> None:
    assert "'HS256' is not allowed" in refused(auth, provider.forged_hs256())
    assert "'HS256' is not allowed" in refused(auth, provider.forged_hs256(secret=b"guess"))


def test_algorithm_that_does_not_match_the_key(provider: OidcProvider, auth: Authenticator) -> None:
    # ES256 signature, but the kid names the RSA key.
    token = provider.token(alg="ES256", kid=provider.key_for("RS256").kid)
    assert "does not match its key" in refused(auth, token)


def test_unknown_kid(provider: OidcProvider, auth: Authenticator) -> None:
    assert refused(auth, provider.token(kid="made-up")).startswith("Unknown key id (kid) 'made-up'")


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "x.y.z.w"],
)
def test_malformed(auth: Authenticator, token: str) -> None:
    assert refused(auth, token).startswith("Malformed token")


@pytest.mark.parametrize("claim", ["sub", "exp", "iss"])
def test_missing_claim(provider: OidcProvider, auth: Authenticator, claim: str) -> None:
    message = refused(auth, provider.token(**{claim: None}))
    assert f"`{claim}`" in message or "no issuer" in message


def test_non_numeric_expiry(provider: OidcProvider, auth: Authenticator) -> None:
    assert "`exp` claim is not a number" in refused(auth, provider.token(exp="tomorrow"))


# --- keys: rotation, bounded re-fetch, fetch errors, cache age ---------------------


def test_key_rotation_verifies_new_tokens_after_one_refetch(
    provider: OidcProvider, auth: Authenticator
) -> None:
    old = provider.token()
    auth.verify(old)
    assert provider.jwks_fetches == 1
    provider.rotate()
    assert auth.verify(provider.token())["subject"] == "user-1"
    assert auth.verify(provider.token(alg="ES256"))["subject"] == "user-1"
    assert provider.jwks_fetches == 2
    assert refused(auth, old).startswith("Unknown key id")  # the withdrawn key


def test_a_flood_of_unknown_kids_refetches_at_a_bounded_rate(
    provider: OidcProvider, auth: Authenticator, clock: Clock
) -> None:
    auth.verify(provider.token())
    assert provider.jwks_fetches == 1
    for _ in range(200):
        refused(auth, provider.token(kid=uuid.uuid4().hex))
    assert provider.jwks_fetches == 2  # one re-fetch, not 200
    clock.now += AUTH_JWKS_REFETCH_SECONDS
    for _ in range(200):
        refused(auth, provider.token(kid=uuid.uuid4().hex))
    assert provider.jwks_fetches == 3
    assert auth.verify(provider.token())["subject"] == "user-1"  # known kids unaffected


def test_a_provider_that_is_down_refuses_with_the_reason_and_is_retried(
    provider: OidcProvider, auth: Authenticator, clock: Clock
) -> None:
    provider.down = True
    message = refused(auth, provider.token())
    assert "Could not fetch the OIDC discovery document" in message
    assert "503" in message
    provider.down = False
    # Within the retry pause: the same reason, the provider is not asked again.
    assert refused(auth, provider.token()) == message
    assert provider.discovery_fetches == 0
    clock.now += AUTH_FETCH_RETRY_SECONDS
    assert auth.verify(provider.token())["subject"] == "user-1"  # the failure was not kept


def test_an_unreachable_key_set_url(clock: Clock) -> None:
    with running_oidc_provider() as stopped:
        url = stopped.jwks_url
    auth = authenticator(
        clock,
        {"type": "customJwt", "issuer": "https://i.example", "jwks": url, "algorithm": "RS256"},
    )
    token = stopped.token(iss="https://i.example")
    assert "Could not fetch the key set of https://i.example" in refused(auth, token)


def test_the_cached_keys_are_reread_after_their_max_age(
    provider: OidcProvider, auth: Authenticator, clock: Clock
) -> None:
    old_key = provider.key_for("RS256")
    auth.verify(provider.token())
    provider.rotate()
    provider.keys.append(old_key)  # still published: verifies from cache, no fetch
    auth.verify(provider.token(key=old_key))
    assert provider.jwks_fetches == 1
    provider.keys.remove(old_key)  # withdrawn (leaked): gone once the cache ages out
    clock.now += AUTH_JWKS_MAX_AGE_SECONDS
    token = provider.token(key=old_key, exp=int(clock.now) + 3600, iat=int(clock.now))
    assert refused(auth, token).startswith("Unknown key id")
    assert provider.jwks_fetches == 2
    assert provider.discovery_fetches == 2


# --- identity ------------------------------------------------------------------------


def test_identity_has_convexs_field_names(provider: OidcProvider, auth: Authenticator) -> None:
    standard = {
        "name": "Ann Lee",
        "given_name": "Ann",
        "family_name": "Lee",
        "nickname": "ann",
        "preferred_username": "annl",
        "profile": "https://p.example/ann",
        "picture": "https://p.example/ann.png",
        "email": "ann@example.com",
        "email_verified": True,
        "gender": "female",
        "birthdate": "1990-01-01",
        "zoneinfo": "Europe/Paris",
        "locale": "fr-FR",
        "phone_number": "+33 1 23 45 67 89",
        "phone_number_verified": False,
        "updated_at": "2026-01-01T00:00:00Z",
    }
    identity = auth.verify(
        provider.token(
            sub="ann", jti="j1", nbf=int(time.time()), team="blue", roles=["a"], **standard
        )
    )
    assert identity == {
        "tokenIdentifier": f"{provider.issuer}|ann",
        "subject": "ann",
        "issuer": provider.issuer,
        "name": "Ann Lee",
        "givenName": "Ann",
        "familyName": "Lee",
        "nickname": "ann",
        "preferredUsername": "annl",
        "profileUrl": "https://p.example/ann",
        "pictureUrl": "https://p.example/ann.png",
        "email": "ann@example.com",
        "emailVerified": True,
        "gender": "female",
        "birthday": "1990-01-01",
        "timezone": "Europe/Paris",
        "language": "fr-FR",
        "phoneNumber": "+33 1 23 45 67 89",
        "phoneNumberVerified": False,
        "updatedAt": "2026-01-01T00:00:00Z",
        "team": "blue",
        "roles": ["a"],
    }


def test_a_custom_claim_cannot_pose_as_the_verified_fields(
    provider: OidcProvider, auth: Authenticator
) -> None:
    identity = auth.verify(
        provider.token(sub="ann", tokenIdentifier="x|admin", subject="admin", issuer="x")
    )
    assert identity["tokenIdentifier"] == f"{provider.issuer}|ann"
    assert (identity["subject"], identity["issuer"]) == ("ann", provider.issuer)


# --- the fetch adapter -----------------------------------------------------------------


def test_redirects_are_followed_only_to_urls_a_config_could_name(
    provider: OidcProvider, clock: Clock
) -> None:
    provider.redirects["/moved.json"] = provider.jwks_url  # loopback http: followed
    provider.redirects["/plain.json"] = "http://keys.example/jwks.json"  # plain http: refused
    moved = provider.custom_jwt_config("RS256")
    moved["jwks"] = provider.url + "/moved.json"
    assert authenticator(clock, moved).verify(provider.token())["subject"] == "user-1"
    plain = provider.custom_jwt_config("RS256")
    plain["jwks"] = provider.url + "/plain.json"
    message = refused(authenticator(clock, plain), provider.token())
    assert "redirects to 'http://keys.example/jwks.json'" in message
    assert "must use https://" in message


def test_concurrent_first_calls_fetch_the_keys_once(
    provider: OidcProvider, auth: Authenticator
) -> None:
    tokens = [provider.token(sub=f"u{i}", alg=("RS256", "ES256")[i % 2]) for i in range(16)]
    start = threading.Barrier(len(tokens))
    subjects: list[str] = []

    def call(token: str) -> None:
        start.wait(timeout=30)
        subjects.append(auth.verify(token)["subject"])

    threads = [threading.Thread(target=call, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(subjects) == sorted(f"u{i}" for i in range(16))
    assert (provider.discovery_fetches, provider.jwks_fetches) == (1, 1)
