"""Team visibility as people meet it, through tools nobody here wrote (issue 16): a real browser (Debian's
chromium, headless, driven by selenium) that logs in through the login form, the REST client users
install (``apache-airflow-client``), and property-based requests generated from the webserver's own
OpenAPI document (``schemathesis``), all against one real multi-team deployment with
``FabTeamRolesAuthManager``.

People: alice (User, ``team:team_a``), dana, a data engineer (Op, ``team:*``), and carol, the admin
(Admin, ``team:*``), who onboards the others through the REST API. Every DAG has run once. Screenshots
of the pages the browser opens, and the findings of the property-based pass, are written to
``test-artifacts/team-experience/`` (gitignored)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests

from tests.test_utils.deployment import local_executors

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "team-experience"
AUTH_MANAGER = "airflow.teams.fab_auth_manager.FabTeamRolesAuthManager"
# Basic auth for scripts and clients; the session for the UI's own calls of the REST API (grid, details).
API_AUTH = ",".join(f"airflow.providers.fab.auth_manager.api.auth.backend.{name}" for name in ("basic_auth", "session"))

ETL = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import PythonOperator

    with DAG("etl", schedule="@once", start_date=pendulum.datetime(2024, 1, 1), tags=["etl"]):
        PythonOperator(task_id="extract", python_callable=lambda: {"rows": 3}) >> EmptyOperator(task_id="load")
"""
REPORT = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("report", schedule="@once", start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="publish")
"""
# team_a's DAG that the property-based pass may change (runs, notes, states, pause): no other test reads it.
SANDBOX = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("sandbox", schedule="@once", start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="noop")
"""
# team_b's own: its tag, task id and XCom value must not reach anyone outside team_b.
BILLING = """
    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    with DAG("billing", schedule="@once", start_date=pendulum.datetime(2024, 1, 1), tags=["team_b_secret_tag"]):
        PythonOperator(task_id="charge_customers", python_callable=lambda: "INVOICE-4242 for team_b")
"""
BROKEN = "from airflow import DAG\nraise RuntimeError('broken on purpose')\n"
DAG_FILES = {"team_a": {"etl.py": ETL, "report.py": REPORT, "sandbox.py": SANDBOX, "broken.py": BROKEN},
             "team_b": {"etl.py": ETL, "billing.py": BILLING, "broken.py": BROKEN}}
TEAM_A_DAGS = ["team_a:etl", "team_a:report", "team_a:sandbox"]
TEAM_B_DAGS = ["team_b:billing", "team_b:etl"]
ALL_DAGS = sorted(TEAM_A_DAGS + TEAM_B_DAGS)
RUN_ID = "scheduled__2024-01-01T00:00:00+00:00"  # the one run of every DAG (@once)
POOLS = {"team_a:reserved": 2, "team_b:reserved": 2}
# What of team_b reaches nobody outside team_b: anything naming the team (DAG ids, its folder in file
# locations, its pool, its tag), its task and its XCom value.
TEAM_B_MARKERS = ("team_b", "charge_customers", "INVOICE-4242")
PEOPLE = {"alice": ["User", "team:team_a"], "dana": ["Op", "team:*"], "carol": ["Admin", "team:*"]}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server):
    from tests.test_utils.deployment import Deployment

    root = tmp_path_factory.mktemp("experience")
    database = postgres_server.create_database(f"e2e_experience_{root.name.replace('-', '_')}")
    deployment = Deployment(root, database, local_executors("team_a", "team_b"), core__auth_manager=AUTH_MANAGER,
                            api__auth_backends=API_AUTH, webserver__workers="1")
    for team, files in DAG_FILES.items():
        for filename, source in files.items():
            deployment.write_dag(team, filename, source)
    deployment.migrate()
    deployment.airflow("sync-perm")  # the default roles
    deployment.create_user("carol", "Admin")
    deployment.start_webserver()
    deployment.start_scheduler_and_processors(("team_a", "team_b"), active_dags=len(ALL_DAGS))
    deployment.wait_for_webserver()
    onboard(deployment)
    for dag_id in ALL_DAGS:
        assert deployment.wait_for_dag_run(dag_id) == "success", dag_id
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM import_error") == 2, "2 import errors")
    yield deployment
    deployment.stop_all()


def onboard(deployment) -> None:
    """carol, the admin, creates the team roles, the other people and two team pools through the REST API."""
    def call(method: str, path: str, **body) -> None:
        response = requests.request(method, f"{deployment.url}{path}", json=body, auth=("carol", "carol"), timeout=30)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"

    for role in ("team:team_a", "team:*"):
        call("POST", "/auth/fab/v1/roles", name=role, actions=[])
    for user, roles in PEOPLE.items():
        person = dict(username=user, email=f"{user}@example.invalid", first_name=user, last_name=user,
                      roles=[{"name": role} for role in roles])
        if user == "carol":  # created with the CLI, as the first admin is; now in every team too
            call("PATCH", "/auth/fab/v1/users/carol?update_mask=roles", **person)
        else:
            call("POST", "/auth/fab/v1/users", password=user, **person)
    for pool, slots in POOLS.items():
        call("POST", "/api/v1/pools", name=pool, slots=slots)


# ---- a person in a real browser --------------------------------------------------------------------

SHADOW_TEXT = ("const root = document.getElementById('root');"
               "return root && root.shadowRoot ? root.shadowRoot.textContent : '';")


@pytest.fixture(scope="module")
def chromium():
    from tests.test_utils.browser import debian_chromium

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return debian_chromium()


@pytest.fixture
def browser(chromium):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class Person:
    """One person's browser: logs in through the form, opens pages and screenshots each one."""

    def __init__(self, driver, deployment, name: str):
        self.driver, self.url, self.name = driver, deployment.url, name

    def log_in(self) -> None:
        from selenium.webdriver.common.by import By

        self.open("/login/", "login")
        self.driver.find_element(By.ID, "username").send_keys(self.name)
        self.driver.find_element(By.ID, "password").send_keys(self.name)
        self.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        self.wait(lambda d: d.current_url.endswith("/home"), "the home page after logging in")

    def open(self, path: str, page: str) -> None:
        self.driver.get(f"{self.url}{path}")
        self.page = page

    def wait(self, condition, what: str, timeout: float = 30):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(condition)
        except TimeoutException:
            shot = self.screenshot(f"{self.page}-timeout")
            raise AssertionError(f"{self.name}: no {what} after {timeout}s at {self.driver.current_url} "
                                 f"(screenshot: {shot})") from None

    def screenshot(self, page: str | None = None) -> Path:
        path = ARTIFACTS / f"{self.name}-{page or self.page}.png"
        self.driver.save_screenshot(str(path))
        return path

    def listed_dags(self) -> list[str]:
        from selenium.webdriver.common.by import By

        links = self.driver.find_elements(By.CSS_SELECTOR, "td a strong[title]")
        return sorted(link.get_attribute("title") for link in links)

    def react_text(self) -> str:
        """The text of the React views (grid, details): they render into a shadow root."""
        return self.driver.execute_script(SHADOW_TEXT)

    def alerts(self) -> list[str]:
        from selenium.webdriver.common.by import By

        return [e.text.strip(" ×\n") for e in self.driver.find_elements(By.CSS_SELECTOR, ".alert") if e.text.strip()]


def open_grid(person: Person, dag_id: str, tasks: list[str]) -> str:
    person.open(f"/dags/{dag_id}/grid", f"grid-{dag_id.replace(':', '-')}")

    def rendered(driver) -> str:
        text = person.react_text()
        return text if all(task in text for task in tasks) and "Total success" in text else ""

    text = person.wait(rendered, f"grid of {dag_id} with the tasks {tasks} and its successful run")
    person.screenshot()
    assert person.driver.current_url.endswith(f"/dags/{dag_id}/grid") and dag_id in person.driver.title
    assert "Access is Denied" not in person.alerts()
    return text


@pytest.mark.parametrize(("name", "own_dags"), [("alice", TEAM_A_DAGS), ("dana", ALL_DAGS), ("carol", ALL_DAGS)])
def test_a_person_in_the_browser_sees_and_opens_only_the_dags_of_their_teams(deployment, browser, name, own_dags):
    person = Person(browser, deployment, name)
    person.log_in()
    person.wait(lambda d: person.listed_dags(), "DAG list")
    person.screenshot("home")
    assert person.listed_dags() == own_dags
    assert f"Showing 1-{len(own_dags)} of {len(own_dags)} DAGs" in browser.find_element("tag name", "body").text

    grid = open_grid(person, "team_a:etl", ["extract", "load"])
    assert "team_b" not in grid
    if name == "alice":
        person.open("/dags/team_b:billing/grid", "grid-team_b-billing")
        person.wait(lambda d: d.current_url.endswith("/home"), "redirect to the home page")
        person.screenshot()
        assert "Access is Denied" in person.alerts()
        assert person.listed_dags() == own_dags
        assert not [marker for marker in TEAM_B_MARKERS if marker in browser.page_source]
    else:  # in every team: team_b's DAG opens as well
        open_grid(person, "team_b:billing", ["charge_customers"])


# Every navbar entry of each kind of person: a team member, a member of every team with no team and with one
# team selected in the switcher, and the admin. (name, selected team)
NAVBAR_PEOPLE = [("alice", None), ("dana", None), ("dana", "team_a"), ("carol", None)]


def navbar_links(person: Person) -> dict[str, str]:
    """The navbar's entries that lead to a page of this site: text -> URL (dropdown entries included)."""
    from selenium.webdriver.common.by import By

    links = {}
    for link in person.driver.find_elements(By.CSS_SELECTOR, ".navbar a[href]"):
        href = link.get_attribute("href") or ""
        text = " ".join((link.get_attribute("textContent") or "").split())
        if href.startswith(person.url) and "#" not in href and text and "/logout" not in href \
                and "/teams/select" not in href:
            links[text] = href
    return links


@pytest.mark.parametrize(("name", "team"), NAVBAR_PEOPLE, ids=["team-member", "every-team", "one-team-selected",
                                                               "admin"])
def test_every_navbar_entry_is_there_and_opens_for_each_kind_of_person(deployment, browser, name, team):
    person = Person(browser, deployment, name)
    person.log_in()
    if team:
        person.open(f"/teams/select?team={team}&next=/home", f"home-{team}")
    person.wait(lambda d: person.listed_dags(), "DAG list")
    links = navbar_links(person)
    assert "DAGs" in links, sorted(links)

    session = requests.Session()  # the browser's session: status codes and flashed refusals, for every entry
    for cookie in browser.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    problems = []
    for text, href in sorted(links.items()):
        response = session.get(href, timeout=120)
        if response.status_code >= 400:
            problems.append(f"{text} ({href}): HTTP {response.status_code}")
        elif "Access is Denied" in response.text:
            problems.append(f"{text} ({href}): Access is Denied")
    browser.get_log("browser")  # what the home page logged is not a navbar entry's
    for text, href in sorted(links.items()):  # the console of each entry, in the browser
        browser.get(href)
        problems += [f"{text} ({href}): console: {entry['message']}" for entry in browser.get_log("browser")
                     if entry["level"] == "SEVERE" and not CONSOLE_ERRORS_NOT_OF_THE_FORK.search(entry["message"])
                     and not (entry["message"].startswith("http") and not entry["message"].startswith(person.url)
                              and "Failed to load resource" in entry["message"])]  # FAB's charts from gstatic.com:
                                                                                     # no internet here
    assert problems == [], "\n".join(problems)


# Upstream 2.11.2's errors, with or without this fork: main.js turns off the autocomplete of a login form
# on every page and throws where there is none (every page but the login page: jQuery reports it); the DAG
# Dependencies page centres an empty graph (this deployment has no dependencies) at NaN.
# The Swagger UI page (connexion's) names no icon, so the browser asks for /favicon.ico, which upstream does
# not serve (404, once per browser). Also not an error of a page: the Swagger UI's fetch of the OpenAPI
# document, cut off when the test opens the next entry before it finished (logged under the next entry).
CONSOLE_ERRORS_NOT_OF_THE_FORK = re.compile(
    r"Uncaught TypeError: Cannot set properties of undefined \(setting 'autocomplete'\)"
    r"|/static/dist/d3\.min\.js .*translate\(NaN,20\)scale\(0\)"
    r"|/favicon\.ico - Failed to load resource: the server responded with a status of 404"
    r"|/api/v1/ui/swagger-ui-bundle\.js .*TypeError: Failed to fetch")


def test_a_data_engineer_switches_the_ui_to_one_team_and_back_without_logging_in_again(deployment, browser):
    from selenium.webdriver.common.by import By

    person = Person(browser, deployment, "dana")
    person.log_in()
    person.wait(lambda d: person.listed_dags() == ALL_DAGS, "every team's DAGs")

    def choose(team_label: str) -> None:
        browser.find_element(By.CSS_SELECTOR, "#teams-switcher > a.dropdown-toggle").click()
        person.wait(lambda d: d.find_element(By.LINK_TEXT, team_label).is_displayed(), f"the switcher's {team_label}")
        browser.find_element(By.LINK_TEXT, team_label).click()

    choose("team_b")
    person.wait(lambda d: person.listed_dags() == TEAM_B_DAGS, "team_b's DAGs only")
    person.screenshot("home-team_b")
    assert browser.find_element(By.ID, "teams-switcher-selected").text == "team_b"
    person.open("/taskinstance/list/", "task-instances-team_b")  # remembered on the next page
    listed = browser.find_element(By.TAG_NAME, "body").text
    assert "team_b:billing" in listed and "team_a:" not in listed
    person.open("/home", "home")
    choose("All my teams")
    person.wait(lambda d: person.listed_dags() == ALL_DAGS, "every team's DAGs again")
    person.screenshot("home-all-teams")


def test_a_team_member_sees_its_teams_pools_and_the_shared_ones_in_the_browser(deployment, browser):
    from selenium.webdriver.common.by import By

    person = Person(browser, deployment, "alice")
    person.log_in()
    assert not browser.find_elements(By.ID, "teams-switcher")  # one team: no switcher
    person.open("/pool/list/", "pools")
    person.wait(lambda d: "team_a:reserved" in d.find_element(By.TAG_NAME, "body").text, "team_a's pool")
    person.screenshot()
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "default_pool" in body and "team_b:reserved" not in body


def test_the_home_page_shows_the_last_run_of_each_dag(deployment, browser):
    """The home page's scripts select '#last-run-<dag id>': a team DAG id's ':' is escaped (patch
    teams-ui-dag-ids), so the Last Run column is filled, without script errors."""
    person = Person(browser, deployment, "alice")
    person.log_in()
    selector_errors = []

    def last_run(driver, dag_id: str) -> str:
        return driver.execute_script(
            "const cell = document.getElementById(arguments[0]); return cell ? cell.textContent.trim() : '';",
            f"last-run-{dag_id}")

    def settled(driver) -> bool:
        selector_errors.extend(entry["message"] for entry in driver.get_log("browser")
                               if "is not a valid selector" in entry["message"])
        # etl and report keep their one run (the property-based pass may change team_a:sandbox's)
        return bool(selector_errors) or all(last_run(driver, dag_id) for dag_id in ("team_a:etl", "team_a:report"))

    person.wait(settled, "last runs (or a script error)")
    person.screenshot("home-last-runs")
    assert not selector_errors


# ---- the REST client users install -----------------------------------------------------------------

def test_the_airflow_client_shows_a_team_member_only_the_teams_dags_runs_and_tasks(deployment):
    import airflow_client.client as client
    from airflow_client.client.api import dag_api, dag_run_api, pool_api, task_instance_api, x_com_api
    from airflow_client.client.exceptions import ForbiddenException, NotFoundException
    from airflow_client.client.model.list_task_instance_form import ListTaskInstanceForm

    configuration = client.Configuration(host=f"{deployment.url}/api/v1", username="alice", password="alice")
    with client.ApiClient(configuration) as api:
        dags, runs = dag_api.DAGApi(api), dag_run_api.DAGRunApi(api)
        instances, xcoms = task_instance_api.TaskInstanceApi(api), x_com_api.XComApi(api)

        listed = dags.get_dags()
        all_runs = runs.get_dag_runs("~")
        all_instances = instances.get_task_instances("~", "~")
        etl_instances = instances.get_task_instances("team_a:etl", RUN_ID)
        all_xcoms = xcoms.get_xcom_entries("~", "~", "~")
        refused = {}
        for what, read in {"dag": lambda: dags.get_dag("team_b:billing"),
                           "dag runs": lambda: runs.get_dag_runs("team_b:billing"),
                           "dag run": lambda: runs.get_dag_run("team_b:etl", RUN_ID),
                           "task instances": lambda: instances.get_task_instances("team_b:billing", RUN_ID),
                           "xcom": lambda: xcoms.get_xcom_entry("team_b:billing", RUN_ID, "charge_customers",
                                                                "return_value")}.items():
            with pytest.raises((ForbiddenException, NotFoundException)) as refusal:
                read()
            refused[what] = refusal.value
        pools = pool_api.PoolApi(api)
        listed_pools = pools.get_pools()
        with pytest.raises(NotFoundException):  # another team's pool, as if there were none
            pools.get_pool("team_b:reserved")
        with pytest.raises(ForbiddenException) as batch:  # upstream's refusal names the DAGs that were asked for
            instances.get_task_instances_batch(ListTaskInstanceForm(dag_ids=["team_a:etl", "team_b:billing"]))

    assert sorted(dag.dag_id for dag in listed.dags) == TEAM_A_DAGS and listed.total_entries == len(TEAM_A_DAGS)
    assert {run.dag_id for run in all_runs.dag_runs} <= set(TEAM_A_DAGS)
    assert {"team_a:etl", "team_a:report"} <= {run.dag_id for run in all_runs.dag_runs}
    assert {(ti.dag_id, ti.task_id) for ti in all_instances.task_instances} >= {
        ("team_a:etl", "extract"), ("team_a:etl", "load"), ("team_a:report", "publish")}
    assert {ti.dag_id for ti in all_instances.task_instances} <= set(TEAM_A_DAGS)
    assert sorted((ti.task_id, ti.state.value) for ti in etl_instances.task_instances) == [
        ("extract", "success"), ("load", "success")]
    assert {entry.dag_id for entry in all_xcoms.xcom_entries} == {"team_a:etl"}
    for what, refusal in refused.items():
        assert refusal.status in (403, 404), what
        assert "charge_customers" not in str(refusal.body) and "INVOICE" not in str(refusal.body), what
    assert "User not allowed to access some of these DAGs: ['team_a:etl', 'team_b:billing']" in batch.value.body
    assert sorted(pool.name for pool in listed_pools.pools) == ["default_pool", "team_a:reserved"]


# ---- property-based requests generated from the OpenAPI document ------------------------------------

EXAMPLES = {"GET": 30}  # inputs per operation by method (about 2,000 requests, ~40 s here); others: OTHER_EXAMPLES
OTHER_EXAMPLES = 12
BUDGET = 50  # seconds; past it every remaining operation gets one input, so the pass stays near this bound
# Task instances whose ids are aimed at together: every team_a and team_b task of the one run.
READ_TARGETS = [("team_a:etl", "extract"), ("team_a:etl", "load"), ("team_a:report", "publish"),
                ("team_a:sandbox", "noop"), ("team_b:billing", "charge_customers"), ("team_b:etl", "extract")]
CHANGE_TARGETS = [("team_a:sandbox", "noop"), ("team_b:billing", "charge_customers"), ("team_b:etl", "extract")]


def team_b_state(deployment) -> list[tuple]:
    """Everything of team_b a request of alice could change: DAGs, runs, task instances, notes, XComs, pools."""
    return deployment.rows("""
        SELECT 'dag', dag_id, is_paused::text || is_active::text FROM dag WHERE dag_id LIKE 'team_b:%'
        UNION ALL SELECT 'run', r.dag_id || '/' || r.run_id, r.state || coalesce(n.content, '')
            FROM dag_run r LEFT JOIN dag_run_note n ON n.dag_run_id = r.id WHERE r.dag_id LIKE 'team_b:%'
        UNION ALL SELECT 'ti', ti.dag_id || '/' || ti.run_id || '/' || ti.task_id, coalesce(ti.state, '')
            || ti.try_number::text || coalesce(n.content, '') FROM task_instance ti LEFT JOIN task_instance_note n
            USING (dag_id, task_id, run_id, map_index) WHERE ti.dag_id LIKE 'team_b:%'
        UNION ALL SELECT 'xcom', dag_id || '/' || task_id || '/' || key, encode(value, 'hex') FROM xcom
            WHERE dag_id LIKE 'team_b:%'
        UNION ALL SELECT 'pool', pool, slots::text || coalesce(description, '') FROM slot_pool WHERE pool LIKE 'team_b%'
        ORDER BY 1, 2, 3""")


class Known:
    """The deployment's own ids by parameter name. Reading: team_a's and team_b's ("~" for all); changing:
    team_a's sandbox DAG and team_b's (team_a's other DAGs stay as the other tests expect them)."""

    def __init__(self, deployment):
        dags = requests.get(f"{deployment.url}/api/v1/dags", auth=("carol", "carol"), timeout=30).json()["dags"]
        tokens = {dag["dag_id"]: dag["file_token"] for dag in dags}
        events = [row[0] for row in deployment.rows(
            "SELECT max(id) FROM log WHERE dag_id IS NOT NULL GROUP BY dag_id ORDER BY 1")]
        import_errors = [row[0] for row in deployment.rows("SELECT id FROM import_error ORDER BY id")]
        self.reading = {
            "dag_id": ["~", *ALL_DAGS], "dag_run_id": ["~", RUN_ID], "task_id": [t for _, t in READ_TARGETS],
            "task_try_number": [1], "map_index": [-1], "xcom_key": ["return_value"],
            "file_token": sorted(tokens.values()),
            "event_log_id": events, "import_error_id": import_errors, "pool_name": ["default_pool", *POOLS],
            "dag_id_pattern": ["team_b", "etl", "billing"], "team": ["team_a", "team_b"],
            "dag_ids": [",".join(TEAM_B_DAGS), "team_a:etl,team_b:billing"], "source_dag_id": TEAM_B_DAGS}
        self.changing = {
            "dag_id": [d for d, _ in CHANGE_TARGETS], "dag_run_id": [RUN_ID], "task_id": [t for _, t in CHANGE_TARGETS],
            "file_token": sorted(tokens.values()), "pool_name": ["team_b:reserved"], "team": ["team_b"],
            "dag_id_pattern": ["team_b", "billing", "sandbox"]}
        # What of team_b no answer to alice may show (besides TEAM_B_MARKERS): a file token encodes the file's path.
        self.team_b_values = [*TEAM_B_DAGS, "team_b:reserved", *(tokens[dag_id] for dag_id in TEAM_B_DAGS)]

    def aim(self, case, data) -> None:
        """Put the deployment's own ids into a generated request now and then, so that it reaches the handlers:
        the ids of one task instance together, or each parameter on its own."""
        from hypothesis import strategies as st

        reading = case.method.upper() == "GET"
        known, targets = (self.reading, READ_TARGETS) if reading else (self.changing, CHANGE_TARGETS)
        if case.method.upper() == "DELETE" and case.path == "/dags/{dag_id}":
            known, targets = known | {"dag_id": TEAM_B_DAGS}, [t for t in targets if t[0] in TEAM_B_DAGS]
        path = case.path_parameters or {}
        if "dag_id" in path and data.draw(st.booleans()):
            dag_id, task_id = data.draw(st.sampled_from(targets))
            together = {"dag_id": dag_id, "dag_run_id": RUN_ID, "task_id": task_id, "task_try_number": 1,
                        "map_index": -1, "xcom_key": "return_value"}
            path.update({name: value for name, value in together.items() if name in path})
        else:
            for name in [name for name in path if name in known]:
                path[name] = data.draw(st.sampled_from([path[name], *known[name]]))
        for name in [name for name in (case.query or {}) if name in known]:
            case.query[name] = data.draw(st.sampled_from([case.query[name], *known[name]]))
        if isinstance(case.body, dict) and "dag_ids" in case.body:
            case.body["dag_ids"] = data.draw(st.sampled_from([case.body["dag_ids"], TEAM_B_DAGS, ALL_DAGS]))


class Findings:
    """What the property-based pass found: answers 500 (or none), answers that show team_b's data, and
    changes that named team_b's objects and succeeded."""

    def __init__(self, deployment):
        self.log = deployment.logs / "webserver.log"
        self.base_url = f"{deployment.url}/api/v1"
        self.found: dict[tuple, str] = {}  # one entry per operation, kind and cause
        self.requests = 0
        self.statuses: dict[str, dict[int, int]] = {}  # answers by operation and status code
        self.unsent: dict[str, int] = {}  # inputs schemathesis could not serialize, by error
        self.not_generated: dict[str, str] = {}  # operations without any input, and why

    def server_error(self, case, what: str, offset: int) -> None:
        time.sleep(0.3)  # the traceback is logged before the answer is sent; let the log catch up anyway
        with self.log.open(errors="replace") as log:
            log.seek(offset)
            text = log.read()
        first = text.split("During handling of the above exception")[0]  # the original traceback
        frames = [line.strip() for line in first.splitlines() if line.lstrip().startswith('File "')]
        raised = [line for line in text.splitlines() if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
        # the first exception (a second one may follow while handling it), the endpoint's frame and the innermost
        cause = raised[0] if raised else "(no traceback in the webserver log)"
        endpoint = next((frame for frame in reversed(frames) if re.search(r"/(api_)?endpoints/", frame)), "")
        where = [re.sub(r'File ".*/site-packages/', 'File "', frame) for frame in (endpoint, *frames[-1:]) if frame]
        self.add(case, what, cause, "\n      ".join([*dict.fromkeys(raised or [cause]), *dict.fromkeys(where)]))

    def add(self, case, kind: str, cause: str, details: str) -> None:
        key = (case.method.upper(), case.path, kind, cause.split(":")[0])
        if key not in self.found:
            curl = case.as_curl_command(headers={"Cookie": "session=<alice's session>"}, base_url=self.base_url)
            self.found[key] = f"{case.method.upper()} {case.path}: {kind}\n    {curl}\n    {details}"

    def report(self) -> str:
        return "\n\n".join(self.found.values())

    def answers(self) -> str:
        return "\n".join(f"{operation}: " + " ".join(f"{code}x{count}" for code, count in sorted(statuses.items()))
                         for operation, statuses in self.statuses.items())


def request_text(request: requests.PreparedRequest) -> str:
    body = request.body.decode(errors="replace") if isinstance(request.body, bytes) else str(request.body or "")
    return unquote(request.url) + "\n" + body


def test_property_based_requests_of_a_team_member_never_fail_nor_show_another_team(deployment, request):
    """schemathesis generates requests for every operation of the webserver's OpenAPI document, valid ones
    and (a third) invalid ones, as alice (team_a), with the deployment's own ids mixed in (``Known``). No
    answer may be a 500 (or none), none may show team_b's data, no change naming team_b's objects may
    succeed, and team_b's rows must stay as they were.

    An error answer may repeat what the request itself named (``User not allowed to access some of these
    DAGs: ['team_b:billing']``): that tells alice nothing she did not send. A successful answer naming
    team_b, or an error naming team_b's values she did not send, is a leak."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_url(f"{deployment.url}/api/v1/openapi.yaml", config=config)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda op: (op.path, op.method))
    known = Known(deployment)
    session = deployment.login("alice", "alice")  # the session cookie: no password hash per request
    findings = Findings(deployment)
    randomly_seed = request.config.getoption("randomly_seed", default=None)
    run_seed = randomly_seed if isinstance(randomly_seed, int) else 0
    before = team_b_state(deployment)

    def send(case) -> None:
        offset = findings.log.stat().st_size
        findings.requests += 1
        try:
            response = case.call(base_url=findings.base_url, session=session, timeout=30, allow_redirects=False)
        except requests.RequestException as error:
            findings.server_error(case, f"no answer ({type(error).__name__})", offset)
            return
        except Exception as error:  # noqa: BLE001 - an input schemathesis cannot send: no request was made
            findings.unsent[type(error).__name__] = findings.unsent.get(type(error).__name__, 0) + 1
            return
        status = response.status_code
        statuses = findings.statuses.setdefault(f"{case.method.upper()} {case.path}", {})
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500:
            findings.server_error(case, f"{status}", offset)
        text, asked = response.content.decode(errors="replace"), request_text(response.request)
        shown = [value for value in (*known.team_b_values, *TEAM_B_MARKERS)
                 if value in text and not (status >= 400 and value in asked)]
        if case.path.startswith("/eventLogs") and status == 200:
            # team_a's audit log records alice's own requests (team_b's ids among their inputs): what it may
            # not show is a row of another DAG, or of none.
            answer = response.json()
            shown = [str(row.get("dag_id")) for row in answer.get("event_logs", [answer])
                     if not str(row.get("dag_id")).startswith("team_a:")]
        if shown:
            findings.add(case, f"{status} showing {shown}", shown[0], f"answer: {text[:600]}")
        # A change of an object of team_b's (named in the path) must not succeed; the two list POSTs only read.
        target = unquote(urlsplit(response.request.url).path)
        named = [value for value in known.team_b_values if value in target]
        if case.method.upper() != "GET" and not case.path.endswith("/list") and status < 300 and named:
            findings.add(case, f"{status}: a change of {named} succeeded", named[0], f"answer: {text[:600]}")

    deadline = started = time.monotonic()
    deadline += BUDGET
    cut = []
    for operation in operations:
        examples = EXAMPLES.get(operation.method.upper(), OTHER_EXAMPLES)
        if time.monotonic() > deadline:
            examples = 1
            cut.append(f"{operation.method.upper()} {operation.path}")
        positive, negative = (operation.as_strategy(GenerationMode.POSITIVE),
                              operation.as_strategy(GenerationMode.NEGATIVE))

        @seed(run_seed)
        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        @given(data=st.data())
        def exercise(data):
            case = data.draw(data.draw(st.sampled_from([positive, positive, negative])))
            known.aim(case, data)
            send(case)

        try:
            exercise()
        except Exception as error:  # noqa: BLE001 - no input could be generated
            findings.not_generated[f"{operation.method.upper()} {operation.path}"] = f"{type(error).__name__}: {error}"
    elapsed = time.monotonic() - started
    after = team_b_state(deployment)

    summary = (f"{findings.requests} requests to {len(operations)} operations in {elapsed:.0f}s, seed {run_seed}; "
               f"not sent: {findings.unsent or 'none'}; not generated: {findings.not_generated or 'none'}; "
               f"one input only (past the {BUDGET}s budget): {cut or 'none'}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "schemathesis-findings.txt").write_text(
        f"{summary}\n\n{findings.report() or 'No findings.'}\n\nAnswers by operation:\n{findings.answers()}\n")
    print(f"schemathesis: {summary}")
    assert not findings.found, (f"{len(findings.found)} findings in {findings.requests} requests (seed {run_seed}, "
                                f"all in {ARTIFACTS / 'schemathesis-findings.txt'}):\n\n{findings.report()[:8000]}")
    assert after == before, "alice's requests changed team_b's rows"
