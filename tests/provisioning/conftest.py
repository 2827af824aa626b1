"""Fixtures of the provisioning tests: a Zulip double per test and apps pointed at it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from idp.extensions import db
from idp.lms.directory import get_directory
from idp.outbox import OutboxMessage, forget_channels
from idp.provisioning.models import LedgerAccount, ProvisionRun
from idp.provisioning.targets import build_target
from idp.provisioning.worker import Provisioner
from tests.helpers import wait_for  # noqa: F401  (imported from here by the tests)

from .zulip_double import BOT_EMAIL, BOT_KEY, SCIM_TOKEN, DoubleServer, ZulipRealm

FAST_RETRY = {"PROVISION_RETRY_BASE": "0.05", "PROVISION_RETRY_MAX": "0.2",
              "PROVISION_HTTP_TIMEOUT": "2"}


@pytest.fixture(autouse=True)
def fresh_outbox_channels():
    """Each test starts with closed breakers and no Retry-After pause."""
    forget_channels()
    yield
    forget_channels()


@pytest.fixture
def realm() -> ZulipRealm:
    return ZulipRealm()


@pytest.fixture
def zulip(realm):
    server = DoubleServer(realm)
    yield server
    server.stop()


@pytest.fixture
def scim_env(zulip) -> dict[str, str]:
    return {"ZULIP_URL": zulip.url, "ZULIP_SCIM_TOKEN": SCIM_TOKEN, **FAST_RETRY}


@pytest.fixture
def rest_env(zulip) -> dict[str, str]:
    return {"ZULIP_URL": zulip.url, "ZULIP_BOT_EMAIL": BOT_EMAIL, "ZULIP_BOT_API_KEY": BOT_KEY,
            **FAST_RETRY}


@pytest.fixture
def scim_app(app, make_app, scim_env):
    """An app provisioning into the SCIM double (``app`` is requested so tables are emptied
    after the test)."""
    return make_app(**scim_env)


def provisioner(application) -> Provisioner:
    """A Provisioner of ``application``; call inside its app context."""
    settings = application.extensions["provisioning"]["settings"]
    return Provisioner(session=db.session, directory=get_directory(), settings=settings,
                       target=build_target(settings), engine=db.engine)


def populate_from_lms(realm: ZulipRealm, *, skip: Callable = lambda person: False) -> dict:
    """Give every LMS person (active or not, as Zulip would have them) a Zulip account with the
    LMS email; returns subject → Account. Call inside an app context."""
    accounts, groups = {}, {"staff"}
    for person in get_directory().iter_people():
        groups.update(person.groups)
        if not skip(person):
            accounts[person.subject] = realm.add(person.email, person.full_name,
                                                 person.zulip_role, active=person.active)
    for name in sorted(groups):
        realm.add_group(name)
    return accounts


def adopt_all(application, realm: ZulipRealm, **kwargs) -> dict:
    """Populate Zulip from the LMS, then one ``apply --once``: the ledger adopts everybody and
    groups are aligned. Call inside ``application``'s app context."""
    accounts = populate_from_lms(realm, **kwargs)
    plan, adopted, report = provisioner(application).apply_once()
    assert adopted == len(accounts) and report.failed == 0 and not report.blocked
    return accounts


def outbox(status: str | None = None) -> list[OutboxMessage]:
    query = db.select(OutboxMessage).order_by(OutboxMessage.id)
    if status:
        query = query.where(OutboxMessage.status == status)
    return list(db.session.scalars(query))


def runs() -> list[ProvisionRun]:
    return list(db.session.scalars(db.select(ProvisionRun).order_by(ProvisionRun.id)))


def ledger(subject: str) -> LedgerAccount | None:
    db.session.expire_all()
    return db.session.get(LedgerAccount, subject)
