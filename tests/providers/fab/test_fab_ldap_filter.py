"""LDAP login of the FAB auth manager: the username is escaped in the search filter (CVE-2026-46745).

Patch providers/fab `ldap-escape-search-filter-username`. The login form of the installed webserver (AUTH_LDAP)
is posted; python-ldap is not part of the fork's constraints, so the test puts a stand-in `ldap` module in
its place that records the filter the security manager sends and finds no entry.
"""

from __future__ import annotations

import sys
import types

import pytest

pytestmark = pytest.mark.db_test

GROUP_FILTER = "(memberOf=cn=airflow,ou=groups,dc=example)"


class _LDAPError(Exception):
    pass


class _InvalidCredentials(_LDAPError):
    pass


class _Connection:
    def __init__(self, server, searches):
        self.server = server
        self.searches = searches

    def set_option(self, *args):
        pass

    def start_tls_s(self):
        pass

    def simple_bind_s(self, who, password):
        if who != "cn=airflow,dc=example" or password != "bind-secret":
            raise _InvalidCredentials(who)

    def search_s(self, base, scope, filterstr, attrlist=None):
        self.searches.append(filterstr)
        return []


@pytest.fixture
def searches(monkeypatch):
    made: list[str] = []
    ldap = types.ModuleType("ldap")
    ldap.LDAPError = _LDAPError
    ldap.INVALID_CREDENTIALS = _InvalidCredentials
    ldap.SCOPE_SUBTREE = 2
    ldap.OPT_REFERRALS = 8
    for name in ("OPT_X_TLS_CACERTDIR", "OPT_X_TLS_CACERTFILE", "OPT_X_TLS_CERTFILE", "OPT_X_TLS_KEYFILE",
                 "OPT_X_TLS_REQUIRE_CERT", "OPT_X_TLS_ALLOW", "OPT_X_TLS_DEMAND", "OPT_X_TLS_NEWCTX"):
        setattr(ldap, name, name)
    ldap.set_option = lambda *args: None
    ldap.initialize = lambda server: _Connection(server, made)
    monkeypatch.setitem(sys.modules, "ldap", ldap)
    return made


@pytest.fixture(scope="module")
def app(own_session_interface):
    from flask_appbuilder.const import AUTH_LDAP

    from airflow.www.app import create_app

    return create_app(
        config={
            "AUTH_TYPE": AUTH_LDAP,
            "AUTH_LDAP_SERVER": "ldap://127.0.0.1:1",
            "AUTH_LDAP_SEARCH": "ou=people,dc=example",
            "AUTH_LDAP_BIND_USER": "cn=airflow,dc=example",
            "AUTH_LDAP_BIND_PASSWORD": "bind-secret",
            "AUTH_LDAP_UID_FIELD": "uid",
            "AUTH_USER_REGISTRATION": True,
            "AUTH_USER_REGISTRATION_ROLE": "Viewer",
            "AUTH_RATE_LIMITED": False,
            "WTF_CSRF_ENABLED": False,
        },
        testing=True,
    )


@pytest.fixture
def search_filter(app):
    saved = app.config.get("AUTH_LDAP_SEARCH_FILTER")

    def set_filter(value: str) -> None:
        app.config["AUTH_LDAP_SEARCH_FILTER"] = value

    yield set_filter
    app.config["AUTH_LDAP_SEARCH_FILTER"] = saved


def _post_login(app, username: str):
    response = app.test_client().post("/login/", data={"username": username, "password": "whatever"})
    assert response.status_code in (200, 302), response.data[:300]  # a refused login, never a 500
    return response


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("*)(uid=*", r"(uid=\2a\29\28uid=\2a)"),
        ("*", r"(uid=\2a)"),
        ("admin)(|(uid=*", r"(uid=admin\29\28|\28uid=\2a)"),
        ("back\\slash", r"(uid=back\5cslash)"),
        ("nul\x00byte", r"(uid=nul\00byte)"),
    ],
    ids=["close-and-reopen", "wildcard", "or-injection", "backslash", "nul"],
)
def test_filter_metacharacters_in_the_username_are_escaped(app, searches, username, expected):
    _post_login(app, username)

    assert searches == [expected]


def test_the_configured_search_filter_keeps_its_own_syntax(app, searches, search_filter):
    search_filter(GROUP_FILTER)

    _post_login(app, "*)(uid=*")

    assert searches == [rf"(&{GROUP_FILTER}(uid=\2a\29\28uid=\2a))"]


def test_an_ordinary_username_is_searched_as_typed(app, searches):
    _post_login(app, "alice.smith-2")

    assert searches == ["(uid=alice.smith-2)"]
