"""Organizations and people on the real daemon: every key acts for a person, an organization's
people see only their organization, four eyes are between people, and two approvers when the
organization requires them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import Daemon
from helpers import LEGAL_ENTITY, LEGAL_NAME, ORG, desk_mandate
from mandate_client import MandateClient, MandateError, Organization, Person


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def problem_of(call: Any) -> tuple[int | None, str | None]:
    """The status and code of the problem ``call()`` raises."""
    with pytest.raises(MandateError) as e:
        call()
    return e.value.status, e.value.code


def every_organization(client: MandateClient) -> list[Organization]:
    out: list[Organization] = []
    cursor = None
    while True:
        page = client.list_organizations(limit=1, cursor=cursor)
        out += page.items
        if page.next_cursor is None:
            break
        assert isinstance(page.next_cursor, str) and page.items
        cursor = page.next_cursor
    assert [o.id for o in client.iter_organizations(page_size=2)] == [o.id for o in out]
    return out


def every_person(client: MandateClient, organization: str | None = None) -> list[Person]:
    out: list[Person] = []
    cursor = None
    while True:
        page = client.list_people(organization=organization, limit=2, cursor=cursor)
        out += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [p.id for p in client.iter_people(organization, page_size=3)] == [p.id for p in out]
    return out


def test_organizations_and_people_are_created_and_listed(daemon: Daemon) -> None:
    admin = daemon.admin
    org_id = unique("globex")
    org = admin.create_organization(
        org_id, "Globex Capital Ltd", ["Globex Holdings SA", "Globex Capital Ltd", "Globex Holdings SA"],
        regulator_id="FCA-123456", approvals_required=2,
    )
    # The legal name and repeats are not kept as further entities.
    assert (org.id, org.legal_name, org.legal_entities, org.regulator_id, org.approvals_required) == (
        org_id, "Globex Capital Ltd", ["Globex Holdings SA"], "FCA-123456", 2)
    assert org.created_at is not None
    plain = admin.create_organization(unique("initech"), "Initech AG")
    assert (plain.legal_entities, plain.regulator_id, plain.approvals_required) == ([], None, 1)
    assert (plain.default_profile, plain.max_validity_secs) == (None, None)
    short = admin.create_organization(unique("quick"), "Quick Desk Ltd", default_profile="shortlived",
                                      max_validity_secs=86_400)
    assert (short.default_profile, short.max_validity_secs) == ("shortlived", 86_400)
    assert problem_of(lambda: admin.create_organization(unique("odd"), "Odd Ltd", default_profile="forever"))[0] == 400
    assert admin.get_organization(org_id) == org
    # CA staff see every organization, page by page.
    listed = {o.id: o for o in every_organization(admin)}
    assert {ORG, org_id, plain.id} <= set(listed)
    assert (listed[ORG].legal_name, listed[ORG].legal_entities) == (LEGAL_NAME, [LEGAL_ENTITY])

    alice = admin.create_person(
        unique("alice"), "Alice Doe", ["operator", "compliance"], organization=org_id, email="alice@globex.example")
    assert (alice.name, alice.email, alice.organization, alice.roles) == (
        "Alice Doe", "alice@globex.example", org_id, ["operator", "compliance"])
    assert alice.created_at is not None and not alice.disabled and not alice.ca_staff
    bob = admin.create_person(unique("bob"), "Bob Roe", ["auditor"], organization=org_id)
    assert bob.email is None
    staff = admin.create_person(unique("ca-admin"), "Cara Admin", ["admin", "auditor"])
    assert (staff.organization, staff.ca_staff) == (None, True)
    assert {p.id for p in every_person(admin, organization=org_id)} == {alice.id, bob.id}
    everyone = {p.id: p for p in every_person(admin)}
    assert {alice.id, bob.id, staff.id, daemon.operator_person, daemon.compliance_person} <= set(everyone)
    assert everyone[daemon.operator_person].roles == ["operator"]

    # A key for one of the person's roles; the person's organization is all it sees.
    key = admin.create_api_key("operator", "globex desk 1", person=alice.id)
    assert (key.role, key.person, key.agent_id, key.label) == ("operator", alice.id, None, "globex desk 1")
    assert key.api_key
    globex = admin.with_key(key.api_key)
    assert [o.id for o in globex.list_organizations().items] == [org_id]
    assert globex.get_organization(org_id).legal_name == "Globex Capital Ltd"
    assert problem_of(lambda: globex.get_organization(ORG)) == (404, "not-found")
    assert problem_of(lambda: daemon.operator.get_organization(org_id)) == (404, "not-found")
    assert daemon.operator.get_organization(ORG).regulator_id == "ESMA-001234"

    # Refusals.
    assert problem_of(lambda: admin.create_organization(org_id, "Again Ltd")) == (409, "conflict")
    assert problem_of(lambda: admin.create_organization("Not A Label", "X Ltd"))[0] == 400
    assert problem_of(lambda: admin.create_organization(unique("x"), "X Ltd", approvals_required=3)) == (
        400, "invalid-request")
    assert problem_of(lambda: admin.create_person(unique("m"), "M", ["admin"], organization=org_id)) == (
        400, "invalid-request")
    assert problem_of(lambda: admin.create_person(unique("m"), "M", ["operator"])) == (400, "invalid-request")
    assert problem_of(lambda: admin.create_api_key("compliance", "not hers", person=bob.id)) == (
        400, "invalid-request")
    assert problem_of(lambda: admin.create_api_key("operator", "nobody", person=unique("ghost"))) == (
        404, "not-found")
    # Only CA staff manage organizations and people.
    assert problem_of(lambda: globex.create_organization(unique("y"), "Y Ltd"))[0] == 403
    assert problem_of(lambda: daemon.operator.create_person(unique("z"), "Z", ["operator"], organization=ORG))[0] == 403
    assert problem_of(lambda: daemon.operator.list_people())[0] == 403


def test_a_disabled_persons_keys_get_401(daemon: Daemon, agent_id: str) -> None:
    erin = daemon.person(["operator", "auditor"], stem="erin")
    as_operator, as_auditor = daemon.key_of(erin.id, "operator"), daemon.key_of(erin.id, "auditor")
    as_operator.register_agent(agent_id, "Erin's bot", desk_mandate())
    assert agent_id in [a.agent_id for a in as_auditor.iter_agents()]

    disabled = daemon.admin.disable_person(erin.id)
    assert (disabled.id, disabled.newly_disabled, disabled.disabled) == (erin.id, True, True)
    for client in (as_operator, as_auditor):
        assert problem_of(lambda: client.list_agents()) == (401, "unauthorized")
    assert problem_of(lambda: as_operator.get_agent(agent_id)) == (401, "unauthorized")
    again = daemon.admin.disable_person(erin.id)
    assert (again.newly_disabled, again.disabled_at) == (False, disabled.disabled_at)
    assert {p.id: p for p in every_person(daemon.admin, ORG)}[erin.id].disabled_at == disabled.disabled_at
    # No new key for a disabled person; what they registered stays.
    assert problem_of(lambda: daemon.admin.create_api_key("operator", "again", person=erin.id)) == (
        409, "wrong-state")
    assert daemon.operator.get_agent(agent_id).status == "pending_approval"
    assert problem_of(lambda: daemon.operator.disable_person(daemon.compliance_person))[0] == 403


def test_one_person_may_not_approve_what_they_requested(daemon: Daemon, agent_id: str) -> None:
    dana = daemon.person(["operator", "compliance"], stem="dana")
    dana_op, dana_co = daemon.key_of(dana.id, "operator"), daemon.key_of(dana.id, "compliance")
    dana_op.register_agent(agent_id, "Dana's bot", desk_mandate())
    # Another key, the same person: segregation of duties holds between people, not keys.
    assert problem_of(lambda: dana_co.approve(agent_id, 1)) == (403, "segregation-of-duties")
    assert problem_of(lambda: dana_co.reject(agent_id, 1)) == (403, "segregation-of-duties")
    assert dana_op.get_agent(agent_id).status == "pending_approval"
    agent = daemon.compliance.approve(agent_id, 1)
    assert (agent.status, agent.approved_mandate_version) == ("active", 1)

    # A version Dana requested for an agent someone else registered: still not hers to approve.
    dana_op.submit_mandate(agent_id, desk_mandate(maxTransactionSize={"amount": "20000", "currency": "EUR"}))
    assert problem_of(lambda: dana_co.approve(agent_id, version=2)) == (403, "segregation-of-duties")
    assert daemon.compliance.approve(agent_id, version=2).approved_mandate_version == 2

    # Dana may decide on what others requested.
    other = f"{agent_id[:40]}-b"
    daemon.operator.register_agent(other, "Other bot", desk_mandate())
    assert dana_co.approve(other, 1).status == "active"


def test_two_approvers_when_the_organization_requires_them(daemon: Daemon, agent_id: str) -> None:
    org = daemon.admin.create_organization(unique("duo"), "Duo Capital Ltd", approvals_required=2)
    op = daemon.key_of(daemon.person(["operator"], org.id, "duo-op").id, "operator")
    c1 = daemon.key_of(daemon.person(["compliance"], org.id, "duo-c1").id, "compliance")
    c2 = daemon.key_of(daemon.person(["compliance"], org.id, "duo-c2").id, "compliance")
    mandate = desk_mandate()
    del mandate["operator"]  # defaults to the organization's legal name
    agent = op.register_agent(agent_id, "Duo bot", mandate)
    assert (agent.organization, agent.mandate["operator"]) == (org.id, "Duo Capital Ltd")

    first = c1.approve(agent_id, version=1)
    assert (first.status, first.mandate_status, first.approved_mandate_version) == (
        "pending_approval", "pending_approval", None)
    assert (first.approvals_recorded, first.approvals_required, first.awaiting_approval) == (1, 2, True)
    assert first.raw["approvals"] == {"recorded": 1, "required": 2}
    assert problem_of(lambda: op.enroll(agent_id)) == (409, "mandate-not-approved")
    assert problem_of(lambda: c1.approve(agent_id, 1)) == (409, "conflict")
    second = c2.approve(agent_id, version=1)
    assert (second.status, second.mandate_status, second.approved_mandate_version) == ("active", "approved", 1)
    assert (second.approvals_recorded, second.awaiting_approval) == (None, False)
    op.enroll(agent_id)

    # Another organization's agent does not exist for ORG's people, nor may they register in it.
    assert problem_of(lambda: daemon.operator.get_agent(agent_id)) == (404, "not-found")
    assert problem_of(lambda: daemon.compliance.approve(agent_id, 1)) == (404, "not-found")
    assert problem_of(
        lambda: daemon.operator.register_agent(f"{agent_id[:40]}-x", "X", desk_mandate(), organization=org.id)
    ) == (404, "not-found")
    assert agent_id not in [a.agent_id for a in daemon.operator.iter_agents()]
    assert agent_id in [a.agent_id for a in op.iter_agents()]


def test_a_mandates_operator_is_one_of_the_organizations_legal_entities(daemon: Daemon, agent_id: str) -> None:
    e = problem_of(lambda: daemon.operator.register_agent(agent_id, "b", desk_mandate(operator="Other Firm AG")))
    assert e == (422, "invalid-mandate")
    agent = daemon.operator.register_agent(agent_id, "b", desk_mandate(operator=LEGAL_ENTITY))
    assert agent.mandate["operator"] == LEGAL_ENTITY
    assert problem_of(
        lambda: daemon.operator.submit_mandate(agent_id, desk_mandate(operator="Other Firm AG"))
    ) == (422, "invalid-mandate")


def readme_block() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Organizations, people and keys") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def test_the_readmes_organizations_people_and_keys(
    daemon: Daemon, agent_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = readme_block()
    org = unique("acme-fx")
    people = {name: unique(name) for name in ("alice", "bob", "carol")}
    for old, new in {
        '"https://mandate.acme.example"': repr(daemon.base_url),
        '"acme-fx"': repr(org),
        '"fx-bot"': repr(agent_id),
        **{f'"{name}"': repr(pid) for name, pid in people.items()},
    }.items():
        assert old in code, old
        code = code.replace(old, new)
    monkeypatch.setenv("MANDATE_ADMIN_KEY", (daemon.data_dir / "admin.key").read_text().strip())
    ns: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), ns)
    agent = daemon.admin.get_agent(agent_id)
    assert (agent.organization, agent.status, agent.mandate["operator"]) == (org, "active", "Acme FX Ltd")
    assert daemon.admin.list_people(organization=org).items[0].disabled
