"""Auth end to end on both shells: the example app (functions/) with an
auth.config.py naming a local OIDC provider (tests/support/oidc.py). The
official Python clients see the identity; anonymous calls see None; a
refused token answers 401 / AuthError with its reason and runs nothing;
two users never share a live query's result."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from convex import ConvexClient
from convex.http_client import ConvexHttpClient
from websockets.sync.client import connect

from tests.support.devserver import APP_FUNCTIONS
from tests.support.oidc import OidcProvider, SigningKey, running_oidc_provider
from tests.support.shells import Backend, app_on_shell

JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcProvider]:
    with running_oidc_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def app(
    oidc: OidcProvider,
    shell: str,
    dynamodb_for: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Backend]:
    functions = tmp_path_factory.mktemp(f"auth-app-{shell}") / "functions"
    shutil.copytree(APP_FUNCTIONS, functions, ignore=shutil.ignore_patterns("__pycache__"))
    (functions / "auth.config.py").write_text(f"providers = [{oidc.oidc_config()!r}]\n")
    yield from app_on_shell(functions, "auth", shell, dynamodb_for, tmp_path_factory)


def _post(app: Backend, path: str, token: str | None, args: dict[str, Any] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    kind = "mutation" if path == "users:store" else "query"
    return requests.post(
        f"{app.url}/api/{kind}",
        json={"path": path, "args": args or {}, "format": "json"},
        headers=headers,
        timeout=30,
    )


def test_the_http_client_sees_the_identity_and_anonymous_calls_see_none(
    app: Backend, oidc: OidcProvider
) -> None:
    client = ConvexHttpClient(app.url)
    assert client.query("users:whoami") is None
    client.set_auth(oidc.token(sub="ann", name="Ann", email="ann@example.com"))
    identity = client.query("users:whoami")
    assert identity["tokenIdentifier"] == f"{oidc.issuer}|ann"
    assert (identity["subject"], identity["issuer"]) == ("ann", oidc.issuer)
    assert (identity["name"], identity["email"]) == ("Ann", "ann@example.com")
    user_id = client.mutation("users:store")
    assert client.mutation("users:store") == user_id  # stored once
    assert client.query("users:me")["name"] == "Ann"


def _bad_signature(oidc: OidcProvider, sub: str) -> str:
    return oidc.token(sub=sub, key=SigningKey.rsa(), kid=oidc.key_for("RS256").kid)


REFUSED = {
    "expired": (lambda p, s: p.token(sub=s, exp=int(time.time()) - 600), "Token expired"),
    "wrong audience": (lambda p, s: p.token(sub=s, aud="someone-else"), "Wrong audience"),
    "unknown issuer": (lambda p, s: p.token(sub=s, iss="https://evil.example"), "Unknown issuer"),
    "bad signature": (_bad_signature, "Bad signature"),
    "alg none": (lambda p, s: p.unsigned(sub=s), "'none' is not allowed"),
    "hs256 forgery": (lambda p, s: p.forged_hs256(sub=s), "'HS256' is not allowed"),
    "not yet valid": (
        lambda p, s: p.token(sub=s, nbf=int(time.time()) + 600),
        "Token is not yet valid",
    ),
    "unknown kid": (lambda p, s: p.token(sub=s, kid="no-such-key"), "Unknown key id"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_token_answers_401_with_its_reason_and_writes_nothing(
    app: Backend, oidc: OidcProvider, case: str
) -> None:
    make, reason = REFUSED[case]
    sub = f"mallory-{case.replace(' ', '-')}"
    answer = _post(app, "users:store", make(oidc, sub))
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert body["code"] == "Unauthenticated"
    assert reason in body["message"]
    assert "refused a user token" in app.log()
    # nothing was written: the same user, signed in properly, has no document
    assert _post(app, "users:me", oidc.token(sub=sub)).json()["value"] is None


def _socket_auth(app: Backend, token: str) -> dict[str, Any]:
    """The server's answer to a Connect + Authenticate(User) on a raw socket."""
    url = app.url.replace("http://", "ws://") + "/api/sync"
    with connect(url, open_timeout=10) as ws:
        ws.send(
            json.dumps(
                {
                    "type": "Connect",
                    "sessionId": "8d0f3f3c-1b7e-4a55-9d3a-0c4b8f3b2a11",
                    "connectionCount": 0,
                    "lastCloseReason": None,
                }
            )
        )
        ws.send(
            json.dumps(
                {"type": "Authenticate", "tokenType": "User", "value": token, "baseVersion": 0}
            )
        )
        ws.send(
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 0,
                    "newVersion": 1,
                    "modifications": [
                        {"type": "Add", "queryId": 0, "udfPath": "users:whoami", "args": [{}]}
                    ],
                }
            )
        )
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "AuthError":
                return message
            if message["type"] == "Transition" and message["modifications"]:
                return message  # the first result (an empty one may come first)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_token_on_the_socket_gets_an_auth_error_with_its_reason(
    app: Backend, oidc: OidcProvider, case: str
) -> None:
    make, reason = REFUSED[case]
    answer = _socket_auth(app, make(oidc, "mallory"))
    assert answer["type"] == "AuthError"
    assert reason in answer["error"]


def test_an_accepted_token_on_the_socket_runs_queries_under_it(
    app: Backend, oidc: OidcProvider
) -> None:
    answer = _socket_auth(app, oidc.token(sub="raw"))
    assert answer["type"] == "Transition"
    assert answer["endVersion"]["identity"] == 1
    [update] = answer["modifications"]
    assert update["value"]["subject"] == "raw"


def _next_where(updates: Iterator[Any], wanted: Any) -> Any:
    for value in updates:
        if wanted(value):
            return value
    raise AssertionError("the subscription ended")


def test_the_socket_client_sees_its_identity_and_two_users_never_share_a_result(
    app: Backend, oidc: OidcProvider
) -> None:
    anon, ann, bob = ConvexClient(app.url), ConvexClient(app.url), ConvexClient(app.url)
    ann.set_auth(oidc.token(sub="ann-live"))
    bob.set_auth(oidc.token(sub="bob-live"))
    assert next(iter(anon.subscribe("users:whoami"))) is None
    ann_view = _next_where(iter(ann.subscribe("users:whoami")), lambda v: v is not None)
    bob_view = _next_where(iter(bob.subscribe("users:whoami")), lambda v: v is not None)
    assert ann_view["subject"] == "ann-live"
    assert bob_view["subject"] == "bob-live"
    # a mutation over the socket runs as its caller
    ann.mutation("users:store")
    me = _next_where(iter(ann.subscribe("users:me")), lambda v: v is not None)
    assert me["tokenIdentifier"] == f"{oidc.issuer}|ann-live"
    assert bob.query("users:me") is None


def test_a_token_when_no_provider_is_configured_is_refused(
    shell: str,
    dynamodb_for: str | None,
    tmp_path_factory: pytest.TempPathFactory,
    oidc: OidcProvider,
) -> None:
    functions = tmp_path_factory.mktemp(f"noauth-{shell}") / "functions"
    shutil.copytree(APP_FUNCTIONS, functions, ignore=shutil.ignore_patterns("__pycache__"))
    for server in app_on_shell(functions, "noauth", shell, dynamodb_for, tmp_path_factory):
        answer = _post(server, "users:whoami", oidc.token())
        assert answer.status_code == 401
        assert "No auth provider is configured" in answer.json()["message"]
        socket = _socket_auth(server, oidc.token())
        assert socket["type"] == "AuthError"
        assert "No auth provider is configured" in socket["error"]


def test_an_action_runs_its_functions_as_its_caller(app: Backend, oidc: OidcProvider) -> None:
    client = ConvexHttpClient(app.url)
    client.set_auth(oidc.token(sub="actor"))
    seen = client.action("users:whoami_in_action")
    assert seen["action"]["subject"] == "actor"
    assert seen["query"] == seen["action"]
    assert ConvexHttpClient(app.url).action("users:whoami_in_action") == {
        "action": None,
        "query": None,
    }


def test_an_http_action_sees_the_bearer_identity(
    app: Backend, oidc: OidcProvider, shell: str
) -> None:
    if shell != "dev":
        pytest.skip("the AWS harness serves HTTP actions under its own tests")
    site = app.site_url  # type: ignore[attr-defined]
    anonymous = requests.get(f"{site}/whoami", timeout=30)
    assert anonymous.json() == {"identity": None}
    signed = requests.get(
        f"{site}/whoami", headers={"Authorization": f"Bearer {oidc.token(sub='web')}"}, timeout=30
    )
    assert signed.json()["identity"]["subject"] == "web"
    refused = requests.get(
        f"{site}/whoami",
        headers={"Authorization": f"Bearer {oidc.token(sub='web', exp=1)}"},
        timeout=30,
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "Unauthenticated"
    assert "Token expired" in refused.json()["message"]
    # another scheme (a webhook's Basic auth) is the handler's business
    basic = requests.get(f"{site}/whoami", headers={"Authorization": "Basic eDp5"}, timeout=30)
    assert basic.json() == {"identity": None}


def test_the_cli_runs_a_function_as_a_user(app: Backend, shell: str) -> None:
    if shell != "dev":
        pytest.skip("the CLI reaches the AWS harness like the dev server; once is enough")
    who = json.dumps({"subject": "cli-user", "issuer": "https://issuer.example", "name": "C"})
    done = app.cli("run", "users:whoami", "{}", "--identity", who)  # type: ignore[attr-defined]
    assert done.returncode == 0, done.stderr
    identity = json.loads(done.stdout)
    assert identity["subject"] == "cli-user"
    assert identity["tokenIdentifier"] == "https://issuer.example|cli-user"
    assert identity["name"] == "C"
    bad = app.cli("run", "users:whoami", "{}", "--identity", '{"subject": 1}')  # type: ignore[attr-defined]
    assert bad.returncode != 0
    assert 'string "subject" and "issuer"' in bad.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_js_client_refreshes_an_expired_and_an_expiring_token(
    app: Backend, oidc: OidcProvider
) -> None:
    now = int(time.time())
    expired = oidc.token(sub="js", name="stale", iat=now - 700, exp=now - 600)
    short = oidc.token(sub="js", name="first", iat=now, exp=now + 12)
    long = oidc.token(sub="js", name="refreshed")
    done = subprocess.run(
        ["node", "auth.mjs", app.url, expired, short, long],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(answer["fetches"]) >= 3  # the first, after AuthError, before expiry
    assert answer["fetches"][1:] == [True] * (len(answer["fetches"]) - 1)
    assert answer["changes"][:1] == [True]
    names = [s["name"] for s in answer["seen"] if s is not None]
    assert "stale" not in names
    assert names[-1] == "refreshed" and "first" in names
    assert all(s["subject"] == "js" for s in answer["seen"] if s is not None)


def test_key_rotation_new_tokens_verify_after_one_refetch(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The provider switches keys mid-test: tokens signed with the new key
    verify (the unknown kid makes the server read the key set again once),
    on a backend of its own (the key cache is per process)."""
    with running_oidc_provider() as provider:
        functions = tmp_path_factory.mktemp(f"rotation-{shell}") / "functions"
        shutil.copytree(APP_FUNCTIONS, functions, ignore=shutil.ignore_patterns("__pycache__"))
        (functions / "auth.config.py").write_text(f"providers = [{provider.oidc_config()!r}]\n")
        for server in app_on_shell(functions, "rotation", shell, dynamodb_for, tmp_path_factory):
            before = provider.token(sub="rot")
            assert _post(server, "users:whoami", before).json()["value"]["subject"] == "rot"
            fetched = provider.jwks_fetches
            provider.rotate()
            after = provider.token(sub="rot2")
            answer = _post(server, "users:whoami", after)
            assert answer.status_code == 200, answer.text
            assert answer.json()["value"]["subject"] == "rot2"
            assert provider.jwks_fetches == fetched + 1
            # and a flood of unknown kids does not make it fetch again at once
            for i in range(20):
                flood = _post(server, "users:whoami", provider.token(sub="x", kid=f"bogus-{i}"))
                assert flood.status_code == 401
            assert provider.jwks_fetches == fetched + 1
