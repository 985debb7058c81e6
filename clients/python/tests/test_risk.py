"""Baselines, risk bands, the circuit breaker and automatic revocation, on the real daemon
(the same history and anomalies as tests/e2e/behaviour.rs)."""

from __future__ import annotations

import pytest

from conftest import Daemon
from helpers import DAY, approved_agent, event, history, midnight, open_mandate
from mandate_client import MandateClient, MandateError, Order, RiskBand

ORDER = Order(market="BTC_EUR", size="10", currency="EUR", region="eu-west-1")


def observed(daemon: Daemon, agent: str) -> None:
    """Reports a week of history, has the baseline learnt (operator) and approved (compliance)."""
    accepted = daemon.operator.report_events(history(agent))
    assert accepted.accepted == 192 and all(e.score is None for e in accepted.events)
    learnt = daemon.operator.learn_baseline(agent)
    assert (learnt.status, learnt.events, learnt.version) == ("pending_approval", 192, 1)
    with pytest.raises(MandateError) as e:
        daemon.operator.approve_baseline(agent)
    assert e.value.status == 403
    approved = daemon.compliance.approve_baseline(agent, version=1)
    assert (approved.status, approved.decided_by) == ("approved", daemon.compliance_key_id)
    assert [v.status for v in daemon.operator.baselines(agent)] == ["approved"]


def throttle(client: MandateClient, agent: str) -> float:
    """How a bot scales its order size by risk band (the README's example)."""
    return {RiskBand.LOW: 1.0, RiskBand.MEDIUM: 0.5, RiskBand.HIGH: 0.0}[client.risk_band(agent)]


def test_risk_bands_follow_behaviour_against_an_approved_baseline(daemon: Daemon, agent_id: str) -> None:
    calm, odd, rogue = (f"{agent_id[:40]}-{n}" for n in ("calm", "odd", "rogue"))
    for agent in (calm, odd, rogue):
        approved_agent(daemon.operator, daemon.compliance, agent, open_mandate())
        daemon.operator.enroll(agent)
        observed(daemon, agent)
    yesterday = midnight() - DAY
    op = daemon.operator

    approved_agent(daemon.operator, daemon.compliance, f"{agent_id[:40]}-new", open_mandate())
    with pytest.raises(MandateError) as e:  # too few events to learn from
        op.learn_baseline(f"{agent_id[:40]}-new")
    assert (e.value.status, e.value.code) == (409, "mandate-not-approved")

    # Usual hours, sizes and markets: low scores, nothing happens.
    r = op.report_events([event(calm, yesterday + 10 * 3600 + i * 600, "100", "BTC_EUR", "eu-west-1") for i in range(6)])
    assert all(e.score is not None and e.score < 0.5 for e in r.events), r
    assert r.incidents == []
    risk = op.risk_score(calm)
    assert (risk.band, risk.baseline_version) == (RiskBand.LOW, 1)
    assert sorted(c.feature for c in risk.contributions) == ["frequency", "geography", "instrument", "size", "time_of_day"]
    assert risk.score is not None and abs(sum(c.contribution for c in risk.contributions) - risk.score) < 0.01
    assert throttle(op, calm) == 1.0
    assert op.preflight(calm, ORDER).allowed

    # Once at 03:00 UTC, an hour it never trades: a warning (~0.8), not a revocation.
    r = op.report_events(event(odd, yesterday + 3 * 3600, "100", "BTC_EUR", "eu-west-1"))
    score = r.events[0].score
    assert score is not None and 0.75 <= score < 0.85, r
    assert [(i.kind, i.agent_id) for i in r.incidents] == [("risk_warning", odd)]
    risk = op.risk_score(odd)
    assert risk.band is RiskBand.HIGH and risk.top_feature == "time_of_day"
    assert risk.score is not None and risk.warning_threshold <= risk.score < risk.auto_revoke_threshold
    assert risk.computed_at is not None
    assert throttle(op, odd) == 0.0
    d = op.preflight(odd, ORDER)
    assert d.codes == ["circuit_breaker_active"] and not d.fail_closed
    assert d.reasons[0].limit == "0.75"
    assert op.get_agent(odd).status == "active"
    # The human sign-off clears the risk score and the circuit breaker.
    incident = daemon.compliance.resolve_incident(r.incidents[0].id, "a one-off manual test order")
    assert incident.status == "resolved" and incident.kind == "risk_warning"
    assert op.risk_score(odd).band is RiskBand.LOW
    assert op.preflight(odd, ORDER).allowed

    # Fifty times its usual size: revoked before the answer comes back.
    r = op.report_events(event(rogue, yesterday + 11 * 3600, "5000", "BTC_EUR", "eu-west-1"))
    score = r.events[0].score
    assert score is not None and score >= 0.85, r
    assert [i.kind for i in r.incidents] == ["auto_revocation"]
    incident = op.get_incident(r.incidents[0].id)
    assert incident.status == "open" and incident.kill_switch_id is not None
    assert incident.risk_score is not None and incident.risk_score >= 0.85
    assert [c.value for c in incident.contributions if c.feature == "size"] == [1.0]
    assert op.get_agent(rogue).status == "suspended"
    assert all(c.revoked for c in op.list_certificates(rogue).items)
    assert op.preflight(rogue, ORDER).codes[0] == "certificate_revoked"
    assert op.risk_band(rogue) is RiskBand.HIGH
    assert [i.id for i in op.list_incidents(agent_id=rogue, status="open").items] == [incident.id]
    # Incidents page by the same opaque cursor as every list, newest first.
    first = op.list_incidents(limit=1)
    assert len(first.items) == 1 and isinstance(first.next_cursor, str)
    rest = op.list_incidents(limit=100, cursor=first.next_cursor)
    assert [i.id for i in op.iter_incidents(page_size=1)] == [i.id for i in first.items + rest.items]
    assert rest.items and rest.items[0].id < first.items[0].id
    acknowledged = op.acknowledge_incident(incident.id)
    assert acknowledged.status == "acknowledged" and acknowledged.acknowledged_by == daemon.operator_key_id
