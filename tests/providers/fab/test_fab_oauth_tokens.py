"""OAuth id_tokens of the FAB auth manager: Azure and Authentik logins accept only verified tokens.

CVE-2026-59243 (Azure id_token decoded without verifying its signature by default), CVE-2026-75156 (Azure:
issuer and audience not checked, cross-tenant login) and CVE-2026-86466 (Authentik: issuer and audience not
checked); patches providers/fab `azure-oauth-verify-id-token` and
`authentik-oauth-check-id-token-issuer-audience`, with the checks in the own tree's `oauth_id_token` module.

The login runs through the webserver's real `/oauth-authorized/<provider>` view of the installed build with
the FAB auth manager. The identity provider is played by the test: it signs id_tokens with an RSA key it
generates and serves the public key as a JWKS from an HTTP server on 127.0.0.1. authlib (FAB's OAuth client,
not part of the fork's constraints) is replaced by a stand-in whose remote hands out the test's id_token as
the token response, the only thing the view takes from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sys
import threading
import time
import types
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.db_test

TENANT = "5e3c5c6e-0000-4000-8000-00000000a2ee"
OTHER_TENANT = "0bad0bad-0000-4000-8000-0000000000ff"
AZURE_CLIENT_ID = "airflow-azure-client"
AZURE_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
AUTHENTIK_CLIENT_ID = "airflow-authentik-client"
AUTHENTIK_ISSUER = "https://authentik.example/application/o/airflow/"
KID = "test-key-1"
REFUSAL = "Error returning OAuth user info"


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = _rsa_key()
OTHER_KEY = _rsa_key()


def _jwks() -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))
    jwk.update(kid=KID, use="sig", alg="RS256")
    return {"keys": [jwk]}


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps(_jwks()).encode()
        self.send_response(200 if self.path == "/keys" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Remote:
    """Stand-in for an authlib remote app: keeps the registered settings, answers with the test's token."""

    def __init__(self, name, client_id=None, client_secret=None, client_kwargs=None, access_token_url=None,
                 authorize_url=None, api_base_url=None, server_metadata_url=None, **metadata):
        self.name = name
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_kwargs = client_kwargs or {}
        self.access_token_url = access_token_url
        self.authorize_url = authorize_url
        self.api_base_url = api_base_url
        self.server_metadata = dict(metadata)
        self.id_token = None

    def load_server_metadata(self):
        return self.server_metadata

    def authorize_access_token(self):
        return {"access_token": "opaque", "id_token": self.id_token}


class _OAuth:
    def __init__(self, app=None):
        self.app = app

    def register(self, name, **kwargs):
        return _Remote(name, **kwargs)


@pytest.fixture(scope="module")
def jwks_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def app(jwks_url, own_session_interface):
    flask_client = types.ModuleType("authlib.integrations.flask_client")
    flask_client.OAuth = _OAuth
    stand_in = {
        "authlib": types.ModuleType("authlib"),
        "authlib.integrations": types.ModuleType("authlib.integrations"),
        "authlib.integrations.flask_client": flask_client,
    }
    from flask_appbuilder.const import AUTH_OAUTH

    from airflow.www.app import create_app

    providers = [
        {
            "name": "azure",
            "token_key": "access_token",
            "remote_app": {
                "client_id": AZURE_CLIENT_ID,
                "client_secret": "secret",
                "api_base_url": f"https://login.microsoftonline.com/{TENANT}/oauth2",
                "client_kwargs": {"scope": "openid email profile"},
                "access_token_url": f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
                "authorize_url": f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize",
                "jwks_uri": jwks_url,
            },
        },
        {
            "name": "authentik",
            "token_key": "access_token",
            "remote_app": {
                "client_id": AUTHENTIK_CLIENT_ID,
                "client_secret": "secret",
                "api_base_url": "https://authentik.example/",
                "client_kwargs": {"scope": "openid email profile"},
                "access_token_url": "https://authentik.example/application/o/token/",
                "authorize_url": "https://authentik.example/application/o/authorize/",
                "issuer": AUTHENTIK_ISSUER,
                "jwks_uri": jwks_url,
            },
        },
    ]
    with pytest.MonkeyPatch.context() as mp:
        for name, module in stand_in.items():
            mp.setitem(sys.modules, name, module)
        flask_app = create_app(
            config={
                "AUTH_TYPE": AUTH_OAUTH,
                "OAUTH_PROVIDERS": providers,
                "AUTH_USER_REGISTRATION": True,
                "AUTH_USER_REGISTRATION_ROLE": "Viewer",
                "AUTH_RATE_LIMITED": False,
                "WTF_CSRF_ENABLED": False,
            },
            testing=True,
        )
    yield flask_app


def _claims(provider: str, **overrides) -> dict:
    now = int(time.time())
    name = f"u{uuid.uuid4().hex[:12]}"
    if provider == "azure":
        claims = {"oid": name, "upn": f"{name}@corp.example", "email": f"{name}@corp.example",
                  "given_name": "A", "family_name": "B", "iss": AZURE_ISSUER, "aud": AZURE_CLIENT_ID,
                  "tid": TENANT, "iat": now, "nbf": now, "exp": now + 600}
    else:
        claims = {"preferred_username": f"{name}@corp.example", "nickname": name, "given_name": "A",
                  "iss": AUTHENTIK_ISSUER, "aud": AUTHENTIK_CLIENT_ID, "iat": now, "exp": now + 600}
    claims.update(overrides)
    return claims


def _username(provider: str, claims: dict) -> str:
    return claims["oid"] if provider == "azure" else claims["nickname"]


def _sign(claims: dict, key=SIGNING_KEY, kid: str | None = KID) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid} if kid else None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict) -> str:
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."


def _hmac_with_public_key(claims: dict) -> str:
    """The classic algorithm confusion: HS256 keyed with the provider's *public* key."""
    public_pem = SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': KID}).encode())}."
                     f"{_b64(json.dumps(claims).encode())}")
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _login(app, provider: str, id_token: str):
    """Run the OAuth callback with ``id_token`` as the provider's answer; return (response, logged-in user id)."""
    app.appbuilder.sm.oauth_remotes[provider].id_token = id_token
    client = app.test_client()
    with client.session_transaction() as session:
        session["oauth_state"] = "state-secret"
    state = jwt.encode({}, "state-secret", algorithm="HS256")
    response = client.get(f"/oauth-authorized/{provider}?state={state}")
    with client.session_transaction() as session:
        user_id = session.get("_user_id")
    return response, user_id


def _refusals(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(REFUSAL)]


@pytest.mark.parametrize("provider", ["azure", "authentik"])
def test_a_token_signed_by_the_provider_logs_in(app, provider, caplog):
    claims = _claims(provider)

    response, user_id = _login(app, provider, _sign(claims))

    assert response.status_code == 302, response.data[:300]
    assert "/login" not in response.headers["Location"]
    user = app.appbuilder.sm.find_user(username=_username(provider, claims))
    assert user is not None and str(user_id) == str(user.id)
    assert _refusals(caplog) == []


FORGERIES = {
    "signed-by-another-key": lambda claims: _sign(claims, key=OTHER_KEY),
    "signed-by-another-key-without-kid": lambda claims: _sign(claims, key=OTHER_KEY, kid=None),
    "alg-none": _unsigned,
    "hs256-keyed-with-the-public-key": _hmac_with_public_key,
    "expired": lambda claims: _sign({**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600}),
    "not-a-jwt": lambda claims: "not-a-jwt",
}

CLAIM_FORGERIES = {
    ("azure", "issuer-of-another-tenant"): {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0",
                                           "tid": OTHER_TENANT},
    ("azure", "issuer-of-another-tenant-v1"): {"iss": f"https://sts.windows.net/{OTHER_TENANT}/",
                                              "tid": OTHER_TENANT},
    ("azure", "audience-of-another-app"): {"aud": "some-other-application"},
    ("azure", "no-issuer-no-audience"): {"iss": None, "aud": None},
    ("authentik", "issuer-of-another-application"): {"iss": "https://authentik.example/application/o/other/"},
    ("authentik", "audience-of-another-app"): {"aud": "some-other-application"},
    ("authentik", "no-issuer-no-audience"): {"iss": None, "aud": None},
}


def _assert_refused(app, provider, claims, response, user_id, caplog):
    assert response.status_code == 302, response.data[:300]  # a refused login, never a 500
    assert response.headers["Location"].endswith("/login/")
    assert user_id is None
    assert app.appbuilder.sm.find_user(username=_username(provider, claims)) is None
    refusals = _refusals(caplog)
    assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
    # the one line names the id_token check (not, e.g., a missing library)
    assert "id_token" in refusals[0].getMessage()


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
@pytest.mark.parametrize("provider", ["azure", "authentik"])
def test_a_forged_token_is_refused(app, provider, forgery, caplog):
    claims = _claims(provider)

    response, user_id = _login(app, provider, FORGERIES[forgery](claims))

    _assert_refused(app, provider, claims, response, user_id, caplog)


@pytest.mark.parametrize(("provider", "forgery"), sorted(CLAIM_FORGERIES))
def test_a_token_for_another_issuer_or_audience_is_refused(app, provider, forgery, caplog):
    """Signed with the provider's real key (Microsoft signs every tenant's tokens with the same keys)."""
    claims = {k: v for k, v in _claims(provider, **CLAIM_FORGERIES[(provider, forgery)]).items() if v is not None}

    response, user_id = _login(app, provider, _sign(claims))

    _assert_refused(app, provider, claims, response, user_id, caplog)


def test_azure_issuer_cannot_be_derived_from_a_multi_tenant_endpoint(app, caplog):
    """An app registered on /common/ names its tenants' issuers itself; until then every token is refused."""
    remote = app.appbuilder.sm.oauth_remotes["azure"]
    saved = remote.access_token_url, remote.authorize_url, remote.api_base_url
    remote.access_token_url = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    remote.authorize_url = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    remote.api_base_url = "https://login.microsoftonline.com/common/oauth2"
    claims = _claims("azure")
    try:
        response, user_id = _login(app, "azure", _sign(claims))
        _assert_refused(app, "azure", claims, response, user_id, caplog)
        assert "issuer" in _refusals(caplog)[0].getMessage()

        caplog.clear()
        remote.client_kwargs["issuer"] = [AZURE_ISSUER]
        claims = _claims("azure")
        response, user_id = _login(app, "azure", _sign(claims))
        assert user_id is not None and "/login" not in response.headers["Location"]
    finally:
        remote.access_token_url, remote.authorize_url, remote.api_base_url = saved
        remote.client_kwargs.pop("issuer", None)
