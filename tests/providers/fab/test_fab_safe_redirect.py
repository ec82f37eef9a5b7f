"""The login's `next` redirect does not trust the Host header (CVE-2025-32962, Flask-AppBuilder < 4.6.2).

Patch airflow `safe-redirect-ignores-host-header`. In Airflow 2.11.2 FAB's login views (AuthDBView, AuthLDAPView,
AuthOAuthView, AuthRemoteUserView) call `get_safe_redirect`, which Airflow swaps for its own
`airflow.www.views.get_safe_url` (AirflowAppBuilder._swap_url_filter); both compared the target with
`request.host_url`, i.e. with the Host header the client sent. The login form of the installed webserver with
the FAB auth manager is posted with a forged Host.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.db_test

EVIL = "evil.example"


@pytest.fixture(scope="module")
def app(own_session_interface):
    from airflow.www.app import create_app

    return create_app(config={"AUTH_RATE_LIMITED": False, "WTF_CSRF_ENABLED": False}, testing=True)


@pytest.fixture
def user(app):
    sm = app.appbuilder.sm
    name, password = f"viewer-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    assert sm.add_user(name, "F", "L", f"{name}@example.com", sm.find_role("Viewer"), password)
    return name, password


def _login(app, user, next_url: str, host: str = "localhost"):
    client = app.test_client()
    response = client.post("/login/", query_string={"next": next_url},
                           data={"username": user[0], "password": user[1]}, headers={"Host": host})
    assert response.status_code == 302, response.data[:300]
    return client, response.headers["Location"]


def _leaves_the_site(location: str) -> bool:
    """A Location that names a host, or that a browser reads as scheme-relative ('//x', '/\\x')."""
    return bool(urlsplit(location).netloc) or location.startswith(("//", "/\\"))


@pytest.mark.parametrize(
    "next_url",
    [f"http://{EVIL}/steal", f"https://{EVIL}/steal", f"//{EVIL}/steal", f"http://{EVIL}//{EVIL}/steal",
     f"http://{EVIL}/\\{EVIL}/steal"],
    ids=["http", "https", "scheme-relative", "double-slash-path", "backslash-path"],
)
def test_a_next_url_on_a_forged_host_is_not_followed(app, user, next_url):
    _, location = _login(app, user, next_url, host=EVIL)

    assert not _leaves_the_site(location), location


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [("http://localhost/dags/example/grid?tab=graph", "/dags/example/grid?tab=graph"),
     ("/dags/example/grid?tab=graph", "/dags/example/grid?tab=graph")],
    ids=["absolute-on-this-host", "relative"],
)
def test_the_login_still_returns_to_the_page_it_came_from(app, user, next_url, expected):
    _, location = _login(app, user, next_url)

    assert location.removeprefix("http://localhost") == expected


def test_a_next_url_on_another_host_still_goes_home(app, user):
    _, location = _login(app, user, f"http://{EVIL}/steal")

    assert location.removeprefix("http://localhost") == "/home"
