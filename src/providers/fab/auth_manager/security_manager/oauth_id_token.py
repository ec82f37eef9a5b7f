#
# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.
"""Verification of the OpenID Connect id_tokens that OAuth providers hand to the FAB auth manager."""

from __future__ import annotations

import re
from typing import Any, Sequence

import jwt
from flask_appbuilder.const import MICROSOFT_KEY_SET_URL

# Only public-key signatures: "none" and the HMAC algorithms (whose "key" would be public) are refused.
SIGNATURE_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Clock skew allowed between the identity provider and the webserver, in seconds.
LEEWAY = 60
# Azure tenants that stand for "any tenant": their tokens carry the issuer of the user's own tenant.
AZURE_MULTI_TENANT = ("common", "organizations", "consumers")
AZURE_TENANT_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
AZURE_TENANT_URL = re.compile(rf"https://login\.microsoftonline\.com/({AZURE_TENANT_ID})/", re.I)


class IdTokenRefused(Exception):
    """The id_token was not accepted, so the login is refused."""


def fetch_jwks(jwks_uri: str) -> dict[str, Any]:
    """Fetch the identity provider's public signing keys (a JSON Web Key Set)."""
    import requests

    try:
        response = requests.get(jwks_uri, timeout=10)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as e:
        raise IdTokenRefused(f"cannot verify the id_token: no signing keys from {jwks_uri}: {e}") from None


def verified_claims(
    id_token: str,
    jwks: dict[str, Any],
    *,
    audience: str | None = None,
    issuers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """
    Return the claims of ``id_token`` once its signature is verified with a key of ``jwks``.

    With ``audience`` and ``issuers``, the token must also name this client as its audience and be
    issued by one of ``issuers``.
    """
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.InvalidTokenError as e:
        raise IdTokenRefused(f"the id_token is malformed: {e}") from None
    algorithm = header.get("alg")
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise IdTokenRefused(f"the id_token is signed with {algorithm!r}, not a public-key algorithm")
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except (jwt.PyJWKSetError, jwt.PyJWKError) as e:
        raise IdTokenRefused(f"cannot verify the id_token: unusable key set: {e}") from None
    kid = header.get("kid")
    candidates = [key for key in keys if kid is None or key.key_id == kid]
    if not candidates:
        raise IdTokenRefused(f"the id_token's signing key {kid!r} is not in the identity provider's key set")
    error: Exception | None = None
    for key in candidates:
        try:
            return jwt.decode(
                id_token,
                key.key,
                algorithms=[algorithm],
                options={
                    "require": ["exp", *(["aud"] if audience else []), *(["iss"] if issuers else [])],
                    "verify_aud": audience is not None,
                },
                audience=audience,
                issuer=list(issuers) if issuers else None,
                leeway=LEEWAY,
            )
        except jwt.InvalidTokenError as e:
            error = e
    raise IdTokenRefused(f"the id_token is not valid: {error}")


def _configured_issuers(remote: Any) -> list[str]:
    issuer = (getattr(remote, "client_kwargs", None) or {}).get("issuer")
    if not issuer:
        return []
    return [issuer] if isinstance(issuer, str) else list(issuer)


def _audience(remote: Any) -> str:
    client_id = getattr(remote, "client_id", None)
    if not client_id:
        raise IdTokenRefused("cannot check the audience of the id_token: the provider has no client_id")
    return client_id


def azure_issuers(remote: Any) -> list[str]:
    """
    Return the issuers of the Azure tenant this deployment is registered in.

    Microsoft signs the tokens of every tenant with the same keys, so the signature alone accepts users of
    any tenant. The issuer comes from client_kwargs ``issuer`` (a string or a list), else from the server
    metadata, else from the tenant id in the provider's URLs. A multi-tenant registration (``common``,
    ``organizations``) or a tenant named by domain must name its issuers in client_kwargs ``issuer``.
    """
    if configured := _configured_issuers(remote):
        return configured
    metadata_issuer = (getattr(remote, "server_metadata", None) or {}).get("issuer")
    if metadata_issuer and "{" not in metadata_issuer:
        return [metadata_issuer]
    for attribute in ("access_token_url", "authorize_url", "api_base_url"):
        if match := AZURE_TENANT_URL.match(getattr(remote, attribute, None) or ""):
            tenant = match.group(1)
            return [f"https://login.microsoftonline.com/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"]
    raise IdTokenRefused(
        "cannot check the issuer of the Azure id_token: no tenant id in the provider's URLs "
        f"(multi-tenant endpoints {', '.join(AZURE_MULTI_TENANT)} or a domain name); set the accepted "
        "issuer(s) in client_kwargs 'issuer'"
    )


def azure_id_token_claims(remote: Any, id_token: str) -> dict[str, Any]:
    """Verify an Azure (Microsoft Entra ID) id_token: Microsoft's signature, this tenant, this client."""
    metadata = getattr(remote, "server_metadata", None) or {}
    jwks_uri = metadata.get("jwks_uri") or MICROSOFT_KEY_SET_URL
    return verified_claims(
        id_token, fetch_jwks(jwks_uri), audience=_audience(remote), issuers=azure_issuers(remote)
    )


def _metadata_issuer(remote: Any) -> str | None:
    metadata = getattr(remote, "server_metadata", None) or {}
    if not metadata.get("issuer") and callable(getattr(remote, "load_server_metadata", None)):
        try:
            metadata = remote.load_server_metadata() or {}
        except Exception as e:
            raise IdTokenRefused(f"cannot check the issuer of the id_token: no metadata: {e}") from None
    return metadata.get("issuer")


def authentik_id_token_claims(remote: Any, id_token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Verify an Authentik id_token: the provider's signature, its issuer (application), this client."""
    issuers = _configured_issuers(remote)
    if not issuers and (issuer := _metadata_issuer(remote)):
        issuers = [issuer]
    if not issuers:
        raise IdTokenRefused(
            "cannot check the issuer of the Authentik id_token: set server_metadata_url (its 'issuer') "
            "or client_kwargs 'issuer'"
        )
    return verified_claims(id_token, jwks, audience=_audience(remote), issuers=issuers)
