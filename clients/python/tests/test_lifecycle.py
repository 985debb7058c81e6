"""The client against the real daemon: an agent's whole life, refusals, custodial signing,
the kill switch, API keys and typed problems."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
import datetime as dt
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import Daemon
from helpers import ORG, approved_agent, desk_mandate
from mandate_client import (
    ApiKey,
    EventReporter,
    MandateError,
    Order,
    OutOfMandate,
    RiskBand,
    generate_key_and_csr,
    parse_time,
    save_private_key,
)

MANDATE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1.1")
TRADE = Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", size="100", currency="EUR", side="buy")


def load_chain(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def test_the_whole_lifecycle(daemon: Daemon, agent_id: str, tmp_path: Path) -> None:
    op, co = daemon.operator, daemon.compliance
    agent = op.register_agent(  # in the operator's own organization (the default)
        agent_id, "Lifecycle bot", desk_mandate(
            maxTransactionSize={"amount": "500", "currency": "EUR"},
            maxDailyVolume={"amount": "1000", "currency": "EUR"},
        ),
    )
    assert agent.organization == ORG
    assert (agent.status, agent.mandate_version, agent.mandate_status) == ("pending_approval", 1, "pending_approval")
    assert (agent.approvals_recorded, agent.approvals_required, agent.awaiting_approval) == (None, None, False)
    assert agent.approved_mandate_version is None
    assert agent.mandate["agentId"] == agent_id and agent.mandate["circuitBreakerThreshold"] == 0.75
    assert agent.dns_name.startswith(f"{agent_id}.{ORG}.")
    assert agent.registered_by == daemon.operator_key_id
    bot = daemon.agent_client(agent_id)

    # Nothing is allowed before compliance approved the mandate.
    d = bot.preflight(agent_id, TRADE)
    assert (d.allowed, d.fail_closed, d.codes) == (False, True, ["mandate_not_approved"])
    with pytest.raises(MandateError) as e:
        bot.certify(agent_id, generate_key_and_csr(agent_id).csr_pem)
    assert (e.value.status, e.value.code) == (409, "mandate-not-approved")

    agent = co.approve(agent_id, version=1, comment="limits match the desk policy")
    assert (agent.status, agent.mandate_status, agent.approved_mandate_version) == ("active", "approved", 1)

    # Certify with a key made here: the bot keeps it (0600), the CA sees only the CSR.
    key_pem, csr_pem = generate_key_and_csr(agent_id)
    key_path = save_private_key(tmp_path / "bot.key", key_pem)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        save_private_key(key_path, key_pem)
    issued = bot.certify(agent_id, csr_pem, validity_days=30)
    assert issued.mandate_version == 1 and issued.key_ref is None
    assert issued.expires_at - dt.datetime.now(dt.timezone.utc) < dt.timedelta(days=30, minutes=1)

    # The certificate verifies against the public chain, and names the agent.
    chain_pem = daemon.client().chain_pem()
    intermediate, root = load_chain(chain_pem)
    assert issued.chain_pem.strip() == chain_pem.strip()
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert format(leaf.serial_number, "x") == issued.serial_number.lstrip("0")
    assert leaf.fingerprint(hashes.SHA256()).hex() == issued.sha256_fingerprint
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == agent_id
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme Trading GmbH"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [agent.dns_name]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert not leaf.extensions.get_extension_for_oid(MANDATE_OID).critical
    private = serialization.load_pem_private_key(key_pem, None)
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        from cryptography.x509.verification import PolicyBuilder, Store
    except ImportError:  # cryptography < 43 has no client verifier
        pass
    else:
        verified = (
            PolicyBuilder()
            .store(Store([root]))
            .time(dt.datetime.now(dt.timezone.utc))
            .build_client_verifier()
            .verify(leaf, [intermediate])
        )
        assert x509.DNSName(agent.dns_name) in (verified.subjects or [])

    record = bot.get_certificate(issued.serial_number)
    assert (record.status, record.agent_id, record.revoked) == ("issued", agent_id, False)
    assert [c.serial_number for c in bot.list_certificates(agent_id).items] == [issued.serial_number]
    full = load_chain(bot.download_certificate(issued.serial_number))
    assert [c.fingerprint(hashes.SHA256()) for c in full] == [
        c.fingerprint(hashes.SHA256()) for c in (leaf, intermediate, root)
    ]

    # Allowed, then reported through the EventReporter: the daily volume counts it.
    d = bot.preflight(agent_id, TRADE)
    assert (d.allowed, d.reasons, d.fail_closed) == (True, (), False)
    with EventReporter(bot, agent_id=agent_id, batch_size=2, flush_interval=0.05) as reporter:
        for size in ("300", Decimal("300.00"), "300"):
            assert reporter.report(
                {"action": "trade_execution", "market": "BTC_EUR", "size": size, "currency": "EUR",
                 "side": "buy", "region": "eu-west-1", "counterparty": "exchange_a"}
            )
        assert reporter.flush(timeout=15)
        s = reporter.stats()
        assert (s.sent, s.dropped) == (3, 0), s
    d = bot.preflight(agent_id, Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", size="200", currency="EUR"))
    assert d.codes == ["daily_volume_cap_exceeded"], d
    cap = d.reason("daily_volume_cap_exceeded")
    assert cap is not None and (cap.limit, cap.requested) == ("1000 EUR", "1100 EUR"), cap
    risk = bot.risk_score(agent_id)
    assert (risk.agent_id, risk.score, risk.band, risk.baseline_version) == (agent_id, None, RiskBand.NOT_MONITORED, None)
    assert not risk.monitored
    assert (risk.warning_threshold, risk.auto_revoke_threshold) == (0.75, 0.85)

    # Revocation (by the bot itself, for a compromised key): idempotent, and the check says so.
    revoked = bot.revoke_certificate(issued.serial_number, "keyCompromise", comment="key leaked")
    assert (revoked.status, revoked.revocation_reason, revoked.revocation_reason_code, revoked.newly_revoked) == (
        "revoked", "keyCompromise", 1, True)
    again = op.revoke_certificate(issued.serial_number, "superseded")
    assert (again.newly_revoked, again.revocation_reason, again.revocation_reason_code) == (False, "keyCompromise", 1)
    d = bot.preflight(agent_id, TRADE)
    assert not d.allowed and not d.fail_closed
    assert d.codes[0] == "certificate_revoked"
    assert (d.reasons[0].limit, d.reasons[0].requested) == ("valid certificate", "revoked")


def test_an_out_of_mandate_trade_is_denied_with_limit_and_requested(daemon: Daemon, agent_id: str) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
    daemon.operator.enroll(agent_id)
    big = Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", size=Decimal("60000"), currency="EUR", side="buy")
    for strict in (False, True):  # a refusal is an answer: strict does not raise
        d = daemon.operator.preflight(agent_id, big, strict=strict)
        assert (d.allowed, d.fail_closed, d.codes) == (False, False, ["exceeds_scope_size"])
        r = d.reasons[0]
        assert (r.code, r.limit, r.requested) == ("exceeds_scope_size", "50000 EUR", "60000 EUR")
    d = daemon.operator.preflight(
        agent_id, {"action": "model_inference", "market": "ETH_EUR", "region": "us-east-1", "size": "60000", "currency": "EUR"}
    )
    assert d.codes == [
        "action_not_permitted",
        "exceeds_scope_size",
        "market_not_allowed",
        "counterparty_not_allowed",
        "region_not_allowed",
    ]
    market = d.reason("market_not_allowed")
    assert market is not None and (market.limit, market.requested) == ("EUR_USD,BTC_EUR", "ETH_EUR")
    counterparty = d.reason("counterparty_not_allowed")
    assert counterparty is not None and counterparty.requested == "(none)"
    # A malformed order is a 422 problem: denied (fail closed), or raised with strict.
    bad = Order(size="10")  # size without currency
    assert daemon.operator.preflight(agent_id, bad).codes == ["preflight_rejected"]
    with pytest.raises(MandateError) as e:
        daemon.operator.preflight(agent_id, bad, strict=True)
    assert (e.value.status, e.value.code) == (422, "invalid-order")


def test_custodial_signing_and_verification(daemon: Daemon, agent_id: str) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
    bot = daemon.agent_client(agent_id)
    issued = bot.certify(agent_id, hsm_key_type="ec-p256")
    assert issued.key_ref is not None and issued.key_ref.startswith("hsm:")
    order = Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", size="1000", currency="EUR",
                  side="buy")
    before = int(time.time())
    signed = bot.sign(agent_id, order)
    assert signed.allowed and signed.certificate_serial == issued.serial_number
    assert signed.algorithm == "ecdsa-with-SHA256"
    # The daemon decides at its own clock, and the signed bytes carry that time.
    stamped = json.loads(signed.payload_bytes)["timestamp"]
    decision = json.loads(signed.payload_bytes)["decision_id"]
    assert before <= stamped <= int(time.time())
    assert decision == signed.raw["decision_id"] and decision.startswith("dec_")
    assert signed.payload_bytes == (
        b'{"action":"trade_execution","market":"BTC_EUR","counterparty":"exchange_a","region":"eu-west-1",'
        b'"size":"1000","currency":"EUR","side":"buy","timestamp":' + str(stamped).encode()
        + b',"decision_id":"' + decision.encode() + b'"}'
    )
    # A timestamp a day away is not signed; a preflight for it is a what-if.
    with pytest.raises(MandateError) as e:
        bot.sign(agent_id, dataclasses.replace(order, timestamp=before + 86_400))
    assert (e.value.status, e.value.code) == (422, "invalid-order")
    what_if = bot.preflight(agent_id, dataclasses.replace(order, timestamp=before + 86_400))
    assert what_if.allowed and what_if.hypothetical
    assert not bot.preflight(agent_id, order).hypothetical
    # What an exchange does: check the signature with the certificate's key ...
    leaf = x509.load_pem_x509_certificate(signed.certificate_pem.encode())
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signed.signature_bytes, signed.payload_bytes, ec.ECDSA(hashes.SHA256()))
    # ... or ask the daemon.
    v = bot.verify_signed_order(signed)
    assert (v.valid, v.agent_id, v.serial_number, v.reasons) == (True, agent_id, issued.serial_number, [])
    assert v.not_after == issued.expires_at
    assert v.revocation == {"status": "good"}
    tampered = base64.b64encode(signed.payload_bytes.replace(b"1000", b"9000")).decode()
    v = bot.verify(signed.certificate_pem + signed.chain_pem, signed.signature, tampered)
    assert not v.valid and "signature_invalid" in v.codes
    # An out-of-mandate order is not signed.
    with pytest.raises(OutOfMandate) as e:
        bot.sign(agent_id, Order(market="ETH_EUR", counterparty="exchange_a", region="eu-west-1", size="60000", currency="EUR"))
    assert e.value.status == 403
    assert e.value.decision.codes == ["exceeds_scope_size", "market_not_allowed"]


def test_the_kill_switch_suspends_and_compliance_reinstates(daemon: Daemon, agent_id: str) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
    first = daemon.operator.enroll(agent_id).certificate
    second = daemon.operator.enroll(agent_id, "ec-p384").certificate
    kill = daemon.compliance.revoke_agent(agent_id, "desk closed the strategy")
    assert (kill.scope, kill.target, kill.agents_suspended) == ("agent", agent_id, [agent_id])
    assert sorted(kill.certificates_revoked) == sorted([first.serial_number, second.serial_number])
    assert daemon.operator.get_agent(agent_id).status == "suspended"
    killed = daemon.operator.get_certificate(first.serial_number)
    assert (killed.revocation_reason, killed.revocation_reason_code) == ("privilegeWithdrawn", 9)
    walked = [(c.serial_number, c.revocation_reason_code) for c in daemon.operator.iter_certificates(agent_id, page_size=1)]
    assert sorted(walked) == sorted([(second.serial_number, 9), (first.serial_number, 9)])
    assert daemon.operator.preflight(agent_id, TRADE).codes[0] == "certificate_revoked"
    with pytest.raises(MandateError) as e:
        daemon.operator.enroll(agent_id)
    assert e.value.code == "mandate-not-approved"
    # Approving is not reinstating; reinstating lifts the suspension and approves nothing.
    with pytest.raises(MandateError) as e:
        daemon.compliance.approve(agent_id, version=1)
    assert (e.value.status, e.value.code) == (409, "wrong-state") and "/reinstate" in str(e.value.detail)
    assert daemon.compliance.reinstate(agent_id, "desk reopened").status == "active"
    daemon.operator.enroll(agent_id)
    assert daemon.operator.preflight(agent_id, TRADE).allowed


def test_mandate_changes_need_approval(daemon: Daemon, agent_id: str) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
    agent = daemon.operator.submit_mandate(agent_id, desk_mandate(maxTransactionSize={"amount": "25000", "currency": "EUR"}))
    assert (agent.status, agent.mandate_version, agent.mandate_status, agent.approved_mandate_version) == (
        "active", 2, "pending_approval", 1)
    with pytest.raises(MandateError) as e:
        daemon.compliance.approve(agent_id, version=1)
    assert (e.value.status, e.value.code) == (409, "wrong-state")
    # What v2 changes, read before deciding.
    pending, approved = daemon.compliance.mandates(agent_id)[:2]
    assert (pending.version, pending.status, approved.status, approved.changes) == (2, "pending_approval", "approved", None)
    assert [(c.field, c.before, c.after, c.direction) for c in pending.changes or ()] == [
        ("maxTransactionSize", "50000 EUR", "25000 EUR", "narrowed")]
    assert not pending.widens
    agent = daemon.compliance.reject(agent_id, version=2, comment="too small")
    assert (agent.mandate_status, agent.approved_mandate_version) == ("rejected", 1)


def test_problems_are_typed_with_their_rfc_9457_fields(daemon: Daemon, agent_id: str) -> None:
    with pytest.raises(MandateError) as e:
        daemon.operator.get_agent("ghost")
    err = e.value
    assert (err.status, err.type, err.title, err.detail) == (404, "urn:mandate:problem:not-found", "Not Found", "agent ghost not found")
    assert err.request_id and not err.retryable
    with pytest.raises(MandateError) as e:
        daemon.client("mk_0123456789abcdef_" + "A" * 43).get_agent("ghost")
    assert (e.value.status, e.value.code, e.value.detail) == (401, "unauthorized", "invalid API key")
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
    with pytest.raises(MandateError) as e:
        daemon.operator.register_agent(agent_id, "again", desk_mandate(), organization=ORG)
    assert (e.value.status, e.value.code) == (409, "conflict")
    with pytest.raises(MandateError) as e:
        daemon.operator.approve(agent_id, 1)
    assert (e.value.status, e.value.code) == (403, "forbidden")
    with pytest.raises(MandateError) as e:
        daemon.operator.certify(agent_id, generate_key_and_csr("other-bot").csr_pem)
    assert (e.value.status, e.value.code) == (400, "name-not-allowed")
    # A SAN naming the agent is accepted; RSA keys too.
    agent = daemon.operator.get_agent(agent_id)
    daemon.operator.certify(agent_id, generate_key_and_csr(agent_id, "rsa-2048", dns_name=agent.dns_name).csr_pem)


def test_api_keys_and_listings(daemon: Daemon, agent_id: str) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
    # An auditor of the CA's own staff (a person of no organization) sees every organization.
    staff = daemon.person(["auditor"], organization=None, stem="py-ca-auditor")
    assert (staff.organization, staff.roles, staff.ca_staff) == (None, ["auditor"], True)
    created = daemon.admin.create_api_key("auditor", "python tests: auditor", person=staff.id)
    assert created.role == "auditor" and created.api_key and created.api_key.startswith(f"mk_{created.id}_")
    assert (created.person, created.agent_id) == (staff.id, None)
    auditor = daemon.admin.with_key(created.api_key)
    assert agent_id in [a.agent_id for a in auditor.iter_agents(page_size=2)]
    assert ORG in [o.id for o in auditor.list_organizations().items]
    with pytest.raises(MandateError) as e:
        auditor.register_agent("nope", "n", desk_mandate(), organization=ORG)
    assert e.value.status == 403
    # CA staff's auditor reads the whole audit log, an organization's auditor its own records.
    assert isinstance(auditor.call("GET", "/v1/audit"), dict)
    org_auditor = daemon.key_of(daemon.person(["auditor"], stem="py-org-auditor").id, "auditor")
    assert agent_id in [a.agent_id for a in org_auditor.iter_agents(page_size=100)]
    # Filters: the agent's state, its latest mandate's state, and a search on id or name.
    assert agent_id in [a.agent_id for a in org_auditor.iter_agents(status="ACTIVE")]
    assert agent_id not in [a.agent_id for a in org_auditor.iter_agents(mandate_status="pending_approval")]
    assert [a.agent_id for a in org_auditor.iter_agents(q=agent_id.upper())] == [agent_id]
    with pytest.raises(MandateError) as e:
        org_auditor.list_agents(status="sleeping")
    assert e.value.status == 400
    own = org_auditor.call("GET", "/v1/audit", query={"limit": 100})
    assert isinstance(own, dict) and own["items"]
    assert all(r["organization"] == ORG for r in own["items"])
    # The audit log pages like every list, and its times are RFC 3339 with milliseconds.
    first = auditor.call("GET", "/v1/audit", query={"limit": 2})
    assert set(first) == {"items", "next_cursor"} and len(first["items"]) == 2
    assert isinstance(first["next_cursor"], str)
    second = auditor.call("GET", "/v1/audit", query={"limit": 2, "cursor": first["next_cursor"]})
    assert second["items"][0]["seq"] > first["items"][-1]["seq"]
    for record in first["items"] + second["items"]:
        assert "at_ms" not in record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["at"]), record["at"]
        assert parse_time(record["at"]).tzinfo is not None
    # Without a person, only agent keys can be made.
    with pytest.raises(MandateError) as e:
        daemon.admin.create_api_key("auditor", "nobody's")
    assert (e.value.status, e.value.code) == (400, "invalid-request")
    keys: dict[str, ApiKey] = {}
    cursor = None
    while True:
        page = daemon.admin.list_api_keys(limit=2, cursor=cursor)
        keys |= {k.id: k for k in page.items}
        assert all(k.api_key is None for k in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert {k.id for k in daemon.admin.iter_api_keys(page_size=3)} == set(keys)
    assert {created.id, daemon.operator_key_id, daemon.compliance_key_id} <= set(keys)
    assert (keys[created.id].person, keys[daemon.operator_key_id].person, keys[daemon.compliance_key_id].person) == (
        staff.id, daemon.operator_person, daemon.compliance_person)
    revoked = daemon.admin.revoke_api_key(created.id)
    assert revoked.revoked_at is not None
    with pytest.raises(MandateError) as e:
        auditor.get_agent(agent_id)
    assert e.value.status == 401
    with pytest.raises(MandateError) as e:
        daemon.operator.create_api_key("operator", "not allowed")
    assert e.value.status == 403
    assert daemon.client().health() == {"status": "ok"}
    eab = daemon.operator.create_eab(agent_id)
    assert eab.agent_id == agent_id and eab.key_id.startswith("eab_")
    assert isinstance(eab.raw["expires_at"], str) and eab.raw["expires_at"].endswith("Z")
    to_expiry = eab.expires_at - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=6, hours=23) < to_expiry <= dt.timedelta(days=7)


def test_order_quantity_and_type_limits_hard_and_soft(daemon: Daemon, agent_id: str) -> None:
    mandate = desk_mandate(
        maxOrderQuantity="10",
        allowedOrderTypes=["limit"],
        marketControls=[{"market": "BTC_EUR", "controls": {"maxOrderQuantity": {"value": "0.5", "enforcement": "soft"}}}],
    )
    approved_agent(daemon.operator, daemon.compliance, agent_id, mandate)
    daemon.operator.enroll(agent_id)
    base = Order(market="EUR_USD", counterparty="exchange_a", region="eu-west-1", size="100", currency="EUR",
                 side="buy", quantity=Decimal("10.5"), price="1.08", order_type="limit", client_order_id="o-1")
    hard = daemon.operator.preflight(agent_id, base)
    assert not hard.allowed and hard.codes == ["exceeds_order_quantity"]
    reason = hard.reason("exceeds_order_quantity")
    assert reason is not None and (reason.limit, reason.requested) == ("10", "10.5")
    soft = daemon.operator.preflight(agent_id, dataclasses.replace(base, market="BTC_EUR", quantity="0.6"))
    assert soft.allowed and [r.code for r in soft.soft_breaches] == ["exceeds_order_quantity"]
    wrong = daemon.operator.preflight(agent_id, dataclasses.replace(base, quantity="1", order_type="market"))
    assert wrong.codes == ["order_type_not_allowed"]
    # An event carries quantity, price and type, not the order's id or intent.
    event = dataclasses.replace(base, quantity="1", intent="new").to_event(agent_id)
    assert "client_order_id" not in event and event["quantity"] == "1"
    assert daemon.operator.report_events([event]).accepted == 1
    lost = dataclasses.replace(base, quantity="1").to_event(agent_id, realised_pnl=Decimal("-12.5"))
    assert lost["realised_pnl"] == "-12.5"
    assert daemon.operator.report_events([lost]).accepted == 1


def test_a_price_collar_against_posted_reference_prices(daemon: Daemon, agent_id: str) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id,
                   desk_mandate(priceCollar={"buyBps": 100, "sellBps": 100}, referencePriceMaxAge=30))
    daemon.operator.enroll(agent_id)
    order = Order(market="EUR_USD", counterparty="exchange_a", region="eu-west-1", size="100", currency="EUR",
                  side="buy", quantity="1", price="1.09", order_type="limit")
    assert daemon.operator.preflight(agent_id, order).codes == ["reference_price_stale"]
    assert daemon.operator.post_reference_prices({"EUR_USD": Decimal("1.08")}) == 1
    assert daemon.operator.preflight(agent_id, order).allowed  # 1.09 <= 1.08 * 1.01
    outside = daemon.operator.preflight(agent_id, dataclasses.replace(order, price="1.0909"))
    assert outside.codes == ["price_outside_collar"]
