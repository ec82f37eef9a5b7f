"""Changing a password through the FAB REST API ends that user's sessions (the CVE-2026-86462 pattern).

Patch providers/fab `api-password-change-ends-user-sessions`. fab 1.5.4 keeps the webserver's sessions in the
metadata database (`[webserver] session_backend = database`, the default); the UI's password reset already
deletes the user's rows, `PATCH /auth/fab/v1/users/<name>` with a password did not. Real logins through the
login form of the installed webserver, the API called with the admin's own session.
"""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.db_test


@pytest.fixture(scope="module")
def app(own_session_interface):
    from airflow.www.app import create_app

    return create_app(config={"AUTH_RATE_LIMITED": False, "WTF_CSRF_ENABLED": False}, testing=True)


def _user(app, role: str) -> tuple[str, str]:
    sm = app.appbuilder.sm
    name, password = f"{role.lower()}-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    assert sm.add_user(name, "F", "L", f"{name}@example.com", sm.find_role(role), password)
    return name, password


def _logged_in(app, name: str, password: str):
    client = app.test_client()
    response = client.post("/login/", data={"username": name, "password": password})
    assert response.status_code == 302 and "/login" not in response.headers["Location"], response.data[:300]
    assert _is_logged_in(client)
    return client


def _is_logged_in(client) -> bool:
    response = client.get("/home")
    assert response.status_code in (200, 302), response.data[:300]
    return response.status_code == 200


def _session_rows_of(app, name: str) -> int:
    sm = app.appbuilder.sm
    interface = app.session_interface
    user_id = sm.find_user(username=name).id
    rows = interface.client.session.query(interface.sql_session_model).all()
    return sum(1 for row in rows if interface.serializer.loads(bytes(row.data)).get("_user_id") == user_id)


def _body(name: str, **changes) -> dict:
    """The user schema wants the whole user; update_mask picks the fields that change."""
    return {"username": name, "first_name": "F", "last_name": "L", "email": f"{name}@example.com", **changes}


def test_a_password_changed_through_the_api_ends_the_users_sessions(app):
    admin = _logged_in(app, *_user(app, "Admin"))
    victim_name, victim_password = _user(app, "Viewer")
    laptop, phone = _logged_in(app, victim_name, victim_password), _logged_in(app, victim_name, victim_password)
    assert _session_rows_of(app, victim_name) == 2

    response = admin.patch(f"/auth/fab/v1/users/{victim_name}?update_mask=password",
                           json=_body(victim_name, password="a-new-password"))

    assert response.status_code == 200, response.data[:300]
    assert _session_rows_of(app, victim_name) == 0
    assert not _is_logged_in(laptop) and not _is_logged_in(phone)
    assert _is_logged_in(admin)  # only the user whose password changed is logged out
    _logged_in(app, victim_name, "a-new-password")  # and the new password works


def test_a_patch_without_a_password_keeps_the_users_sessions(app):
    admin = _logged_in(app, *_user(app, "Admin"))
    name, password = _user(app, "Viewer")
    laptop = _logged_in(app, name, password)

    response = admin.patch(f"/auth/fab/v1/users/{name}?update_mask=first_name", json=_body(name, first_name="Renamed"))

    assert response.status_code == 200, response.data[:300]
    assert _is_logged_in(laptop)
    assert _session_rows_of(app, name) == 1
