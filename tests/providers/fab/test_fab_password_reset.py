"""Password-reset views exist only with AUTH_DB (CVE-2025-58065, Flask-AppBuilder 4.5.4 / fab 1.5.4).

Patch providers/fab `password-reset-views-only-with-auth-db`. The fab provider's security manager registered
`/resetmypassword/form` and `/resetpassword/form` for every AUTH_TYPE, so under LDAP or OAuth any user (Viewer
included) could give their account a database password, which the REST API's basic-auth backend accepts
(`auth_user_db` is its fallback) after the directory or the identity provider has locked the user out.
One webserver app of the installed build per auth type, a logged-in session per user.
"""

from __future__ import annotations

import sys
import types
import uuid

import pytest

pytestmark = pytest.mark.db_test

RESET_PATHS = ("/resetmypassword/form", "/resetpassword/form")


class _OAuth:
    """authlib is not in the fork's constraints: a stand-in for its Flask client (no login runs here)."""

    def __init__(self, app=None):
        pass

    def register(self, name, **kwargs):
        return types.SimpleNamespace(name=name, client_kwargs=kwargs.get("client_kwargs", {}), server_metadata={})


def _create(config: dict):
    from airflow.www.app import create_app
    from airflow.www.extensions import init_auth_manager

    app = create_app(config={"AUTH_RATE_LIMITED": False, "WTF_CSRF_ENABLED": False, **config}, testing=True)
    return app, init_auth_manager.auth_manager


@pytest.fixture(scope="module")
def apps(own_session_interface):
    from flask_appbuilder.const import AUTH_DB, AUTH_LDAP, AUTH_OAUTH

    flask_client = types.ModuleType("authlib.integrations.flask_client")
    flask_client.OAuth = _OAuth
    made = {
        "db": _create({"AUTH_TYPE": AUTH_DB}),
        "ldap": _create({"AUTH_TYPE": AUTH_LDAP, "AUTH_LDAP_SERVER": "ldap://127.0.0.1:1"}),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "authlib", types.ModuleType("authlib"))
        mp.setitem(sys.modules, "authlib.integrations", types.ModuleType("authlib.integrations"))
        mp.setitem(sys.modules, "authlib.integrations.flask_client", flask_client)
        made["oauth"] = _create({
            "AUTH_TYPE": AUTH_OAUTH,
            "OAUTH_PROVIDERS": [{"name": "azure", "token_key": "access_token",
                                 "remote_app": {"client_id": "c", "client_secret": "s"}}],
        })
    return made


@pytest.fixture
def use(apps, monkeypatch):
    """The webserver app of an auth type, its auth manager the process's current one (it is a global)."""
    from airflow.www.extensions import init_auth_manager

    def select(auth_type: str):
        app, auth_manager = apps[auth_type]
        monkeypatch.setattr(init_auth_manager, "auth_manager", auth_manager)
        return app

    return select


def _client_of(app, role: str):
    sm = app.appbuilder.sm
    name = f"{role.lower()}-{uuid.uuid4().hex[:10]}"
    user = sm.add_user(name, "F", "L", f"{name}@example.com", sm.find_role(role), "old-password")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user.id
        session["_fresh"] = True
    assert client.get("/home").status_code == 200
    return client, user


@pytest.mark.parametrize("auth_type", ["ldap", "oauth"])
def test_no_password_reset_view_without_auth_db(use, auth_type):
    app = use(auth_type)
    viewer, user = _client_of(app, "Viewer")
    admin, _ = _client_of(app, "Admin")
    old_hash = user.password

    assert viewer.get("/resetmypassword/form").status_code == 404
    posted = viewer.post("/resetmypassword/form", data={"password": "mine-now", "conf_password": "mine-now"})
    assert posted.status_code == 404
    assert admin.get(f"/resetpassword/form?pk={user.id}").status_code == 404
    assert admin.post(f"/resetpassword/form?pk={user.id}",
                      data={"password": "mine-now", "conf_password": "mine-now"}).status_code == 404
    app.appbuilder.get_session.expire_all()
    assert app.appbuilder.sm.find_user(username=user.username).password == old_hash
    assert not [r.rule for r in app.url_map.iter_rules() if r.rule.startswith(RESET_PATHS)]


def test_auth_db_keeps_its_password_reset_views(use):
    app = use("db")
    viewer, user = _client_of(app, "Viewer")

    assert viewer.get("/resetmypassword/form").status_code == 200
    posted = viewer.post("/resetmypassword/form", data={"password": "new-one", "conf_password": "new-one"})
    assert posted.status_code == 302
    login = app.test_client().post("/login/", data={"username": user.username, "password": "new-one"})
    assert login.status_code == 302 and "/login" not in login.headers["Location"]
