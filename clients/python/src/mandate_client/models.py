"""Typed answers of the mandate API, and the order sent to the pre-trade check.

Every answer class has ``from_json`` (raising :class:`~mandate_client.MandateProtocolError` when
the JSON is not the documented shape) and keeps the whole JSON object in ``raw`` so fields added
by newer daemons stay reachable.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Callable, Generic, Literal, TypeVar

from .errors import MandateProtocolError

__all__ = [
    "Json",
    "Page",
    "Organization",
    "OrganizationPage",
    "Person",
    "PersonPage",
    "ApiKey",
    "ApiKeyPage",
    "Agent",
    "AgentPage",
    "IssuedCertificate",
    "RenewalInfo",
    "Certificate",
    "CertificatePage",
    "KillSwitch",
    "EabCredentials",
    "DECISION_ID",
    "Order",
    "OrderState",
    "OrderStateName",
    "Reason",
    "Decision",
    "DecisionEvent",
    "DecisionRecord",
    "Usage",
    "OrderToTrade",
    "ScoredEvent",
    "IncidentRef",
    "EventsAccepted",
    "RiskBand",
    "Contribution",
    "RiskScore",
    "BaselineVersion",
    "Incident",
    "IncidentPage",
    "SignedOrder",
    "Verification",
    "Webhook",
    "WebhookPage",
    "WebhookDelivery",
    "WebhookDeliveryPage",
    "parse_time",
]

Json = dict[str, Any]


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_time(text: str) -> _dt.datetime:
    """Parses an RFC 3339 time as the API gives every time (``2026-11-21T23:44:47Z``, audit
    records with milliseconds: ``2026-12-07T18:00:00.123Z``) to an aware ``datetime``.

    Fractional seconds of any length (kept to the microsecond) and numeric offsets are
    accepted; a time without an offset, a date alone or other text raises ``ValueError``."""
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micro = int((m.group(7) or "0").ljust(6, "0")[:6])
    if m.group(8):
        tz = _dt.timezone.utc
    else:
        offset = _dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        tz = _dt.timezone(-offset if m.group(9) == "-" else offset)
    return _dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


class _Obj:
    """Typed access to one JSON object of an answer; every miss is a MandateProtocolError."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise MandateProtocolError(
                title="Malformed answer", detail=f"{where}: expected a JSON object"
            )
        self.d: Json = value
        self.where = where

    def _bad(self, key: str, want: str) -> MandateProtocolError:
        got = type(self.d.get(key)).__name__ if key in self.d else "nothing"
        return MandateProtocolError(
            title="Malformed answer", detail=f"{self.where}.{key}: expected {want}, got {got}"
        )

    def get_str(self, key: str) -> str:
        v = self.d.get(key)
        if not isinstance(v, str):
            raise self._bad(key, "a string")
        return v

    def opt_str(self, key: str) -> str | None:
        v = self.d.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise self._bad(key, "a string or null")
        return v

    def get_int(self, key: str) -> int:
        v = self.d.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self._bad(key, "an integer")
        return v

    def opt_int(self, key: str) -> int | None:
        if self.d.get(key) is None:
            return None
        return self.get_int(key)

    def get_float(self, key: str) -> float:
        v = self.d.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise self._bad(key, "a number")
        return float(v)

    def opt_float(self, key: str) -> float | None:
        if self.d.get(key) is None:
            return None
        return self.get_float(key)

    def get_bool(self, key: str) -> bool:
        v = self.d.get(key)
        if not isinstance(v, bool):
            raise self._bad(key, "a boolean")
        return v

    def opt_bool(self, key: str) -> bool | None:
        if self.d.get(key) is None:
            return None
        return self.get_bool(key)

    def get_time(self, key: str) -> _dt.datetime:
        s = self.get_str(key)
        try:
            return parse_time(s)
        except ValueError:
            raise self._bad(key, "an RFC 3339 time") from None

    def opt_time(self, key: str) -> _dt.datetime | None:
        if self.d.get(key) is None:
            return None
        return self.get_time(key)

    def get_decimal(self, key: str) -> Decimal:
        """A decimal the API sends as text (``"0.5"``) or, in some places, as a number."""
        v = self.d.get(key)
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise self._bad(key, "a decimal")
        try:
            d = Decimal(v) if isinstance(v, (str, int)) else Decimal(repr(v))
        except InvalidOperation:
            raise self._bad(key, "a decimal") from None
        if not d.is_finite():
            raise self._bad(key, "a finite decimal")
        return d

    def opt_decimal(self, key: str) -> Decimal | None:
        if self.d.get(key) is None:
            return None
        return self.get_decimal(key)

    def get_obj(self, key: str) -> Json:
        v = self.d.get(key)
        if not isinstance(v, dict):
            raise self._bad(key, "an object")
        return v

    def opt_obj(self, key: str) -> Json | None:
        if self.d.get(key) is None:
            return None
        return self.get_obj(key)

    def get_list(self, key: str, *, optional: bool = False) -> list[Any]:
        v = self.d.get(key)
        if v is None and optional:
            return []
        if not isinstance(v, list):
            raise self._bad(key, "an array")
        return v

    def get_str_list(self, key: str, *, optional: bool = False) -> list[str]:
        items = self.get_list(key, optional=optional)
        if not all(isinstance(x, str) for x in items):
            raise self._bad(key, "an array of strings")
        return [str(x) for x in items]


# --- pages ----------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, the shape every list of the API answers: ``items``, and
    ``next_cursor``, the opaque text to pass as ``cursor=`` for the next page (``None`` on the
    last one). The ``list_*`` methods of :class:`MandateClient` answer one page; the
    ``iter_*`` methods walk them all."""

    items: list[T]
    next_cursor: str | None

    @classmethod
    def _parse(cls, value: Any, where: str, item: Callable[[Any], T]) -> tuple[list[T], str | None]:
        o = _Obj(value, where)
        return [item(x) for x in o.get_list("items")], o.opt_str("next_cursor")


# --- organizations and people ---------------------------------------------------------------


@dataclass(frozen=True)
class Organization:
    """A firm sharing the CA. ``id`` is a DNS label (agents are named under it); mandates name
    ``legal_name`` or one of ``legal_entities`` as their ``operator``; ``approvals_required``
    (1 or 2) is how many compliance people approve a mandate version."""

    id: str
    legal_name: str
    legal_entities: list[str]
    regulator_id: str | None
    approvals_required: int
    created_at: _dt.datetime | None
    default_profile: str | None = None
    max_validity_secs: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Organization:
        o = _Obj(value, "organization")
        return cls(
            id=o.get_str("id"),
            legal_name=o.get_str("legal_name"),
            legal_entities=o.get_str_list("legal_entities", optional=True),
            regulator_id=o.opt_str("regulator_id"),
            approvals_required=o.get_int("approvals_required"),
            created_at=o.opt_time("created_at"),
            default_profile=o.opt_str("default_profile"),
            max_validity_secs=o.opt_int("max_validity_secs"),
            raw=o.d,
        )


class OrganizationPage(Page[Organization]):
    """One page of ``GET /v1/organizations``, by id."""

    @classmethod
    def from_json(cls, value: Any) -> OrganizationPage:
        return cls(*cls._parse(value, "organizations", Organization.from_json))


@dataclass(frozen=True)
class Person:
    """A person API keys act for. ``organization`` is ``None`` for CA staff (roles ``admin``,
    ``auditor``); people of an organization hold ``operator``, ``compliance`` and ``auditor``.
    ``newly_disabled`` is set only in the answer of :meth:`MandateClient.disable_person`."""

    id: str
    name: str
    email: str | None
    organization: str | None
    roles: list[str]
    created_at: _dt.datetime | None
    disabled_at: _dt.datetime | None
    newly_disabled: bool | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def ca_staff(self) -> bool:
        """A person of no organization: sees every organization."""
        return self.organization is None

    @classmethod
    def from_json(cls, value: Any, *, newly_disabled: bool | None = None) -> Person:
        o = _Obj(value, "person")
        return cls(
            id=o.get_str("id"),
            name=o.get_str("name"),
            email=o.opt_str("email"),
            organization=o.opt_str("organization"),
            roles=o.get_str_list("roles"),
            created_at=o.opt_time("created_at"),
            disabled_at=o.opt_time("disabled_at"),
            newly_disabled=newly_disabled,
            raw=o.d,
        )


class PersonPage(Page[Person]):
    """One page of ``GET /v1/people``, by id."""

    @classmethod
    def from_json(cls, value: Any) -> PersonPage:
        return cls(*cls._parse(value, "people", Person.from_json))


# --- API keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """An API key. ``api_key`` (the secret text) is set only in the answer that created it.
    A key acts for a ``person`` (every role but ``agent``) or for an agent (``agent_id``)."""

    id: str
    role: str
    label: str
    agent_id: str | None
    api_key: str | None = None
    person: str | None = None
    created_by: str | None = None
    created_at: _dt.datetime | None = None
    revoked_at: _dt.datetime | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> ApiKey:
        o = _Obj(value, "api_key")
        return cls(
            id=o.get_str("id"),
            role=o.get_str("role"),
            label=o.get_str("label"),
            agent_id=o.opt_str("agent_id"),
            api_key=o.opt_str("api_key"),
            person=o.opt_str("person"),
            created_by=o.opt_str("created_by"),
            created_at=o.opt_time("created_at"),
            revoked_at=o.opt_time("revoked_at"),
            raw=o.d,
        )


class ApiKeyPage(Page[ApiKey]):
    """One page of ``GET /v1/api-keys``, by id."""

    @classmethod
    def from_json(cls, value: Any) -> ApiKeyPage:
        return cls(*cls._parse(value, "api_keys", ApiKey.from_json))


# --- agents ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """The agent view every agent endpoint answers.

    ``status``: ``pending_approval``, ``active`` or ``suspended``. ``mandate`` is the newest
    version (camelCase names of MANDATE.md); ``approved_mandate_version`` is the one
    certificates are issued with. ``approvals_recorded`` and ``approvals_required`` are set only
    in the answer of an approval that awaits another compliance person's (an organization with
    ``approvals_required = 2``): the version stays ``pending_approval`` until then.
    """

    agent_id: str
    name: str
    organization: str
    status: str
    dns_name: str
    mandate: Json
    mandate_version: int
    mandate_status: str
    approved_mandate_version: int | None
    registered_by: str | None
    created_at: _dt.datetime | None
    updated_at: _dt.datetime | None
    approvals_recorded: int | None = None
    approvals_required: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def awaiting_approval(self) -> bool:
        """An approval was recorded and another compliance person's is still needed."""
        return (
            self.approvals_recorded is not None
            and self.approvals_required is not None
            and self.approvals_recorded < self.approvals_required
        )

    @classmethod
    def from_json(cls, value: Any) -> Agent:
        o = _Obj(value, "agent")
        recorded: int | None = None
        required: int | None = None
        approvals = o.opt_obj("approvals")
        if approvals is not None:
            a = _Obj(approvals, "agent.approvals")
            recorded, required = a.get_int("recorded"), a.get_int("required")
        return cls(
            agent_id=o.get_str("agent_id"),
            name=o.get_str("name"),
            organization=o.get_str("organization"),
            status=o.get_str("status"),
            dns_name=o.get_str("dns_name"),
            mandate=o.get_obj("mandate"),
            mandate_version=o.get_int("mandate_version"),
            mandate_status=o.get_str("mandate_status"),
            approved_mandate_version=o.opt_int("approved_mandate_version"),
            registered_by=o.opt_str("registered_by"),
            created_at=o.opt_time("created_at"),
            updated_at=o.opt_time("updated_at"),
            approvals_recorded=recorded,
            approvals_required=required,
            raw=o.d,
        )


@dataclass(frozen=True)
class MandateChange:
    """One field in which a pending mandate version differs from the approved one.

    ``direction``: ``narrowed`` (the agent may do less), ``widened`` (more) or ``changed``
    (neither contains the other; treated as narrowing)."""

    field: str
    before: str
    after: str
    direction: str

    @classmethod
    def from_json(cls, value: Any) -> MandateChange:
        o = _Obj(value, "change")
        return cls(
            field=o.get_str("field"),
            before=o.get_str("before"),
            after=o.get_str("after"),
            direction=o.get_str("direction"),
        )


@dataclass(frozen=True)
class MandateVersion:
    """One version of ``GET /v1/agents/{id}/mandates``: ``status`` is ``pending_approval``,
    ``approved``, ``rejected``, ``superseded`` or ``withdrawn``; a pending version carries its
    ``changes`` against the approved one (``None`` for the others)."""

    version: int
    status: str
    mandate: Json
    requested_by: str
    requested_at: _dt.datetime
    decided_by: str | None
    decided_at: _dt.datetime | None
    changes: tuple[MandateChange, ...] | None

    @property
    def widens(self) -> bool:
        """Whether any change gives the agent more authority."""
        return any(c.direction == "widened" for c in self.changes or ())

    @classmethod
    def from_json(cls, value: Any) -> MandateVersion:
        o = _Obj(value, "mandate version")
        changes = o.d.get("changes")
        return cls(
            version=o.get_int("version"),
            status=o.get_str("status"),
            mandate=o.get_obj("mandate"),
            requested_by=o.get_str("requested_by"),
            requested_at=o.get_time("requested_at"),
            decided_by=o.opt_str("decided_by"),
            decided_at=o.opt_time("decided_at"),
            changes=None
            if changes is None
            else tuple(MandateChange.from_json(c) for c in o.get_list("changes")),
        )


class AgentPage(Page[Agent]):
    """One page of ``GET /v1/agents``, by agent id."""

    @classmethod
    def from_json(cls, value: Any) -> AgentPage:
        return cls(*cls._parse(value, "agents", Agent.from_json))


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCertificate:
    """The answer of certify. ``chain_pem`` is the intermediate then the root; ``key_ref`` is
    ``hsm:<id>`` when the key was generated in the HSM (custodial signing), else ``None``;
    ``profile`` is the certificate profile it was issued under (``None`` from daemons older
    than profiles, and for a lifetime asked for in ``validity_days``)."""

    certificate_pem: str
    chain_pem: str
    serial_number: str
    expires_at: _dt.datetime
    sha256_fingerprint: str
    mandate_version: int
    key_ref: str | None = None
    profile: str | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def fullchain_pem(self) -> str:
        """Leaf, intermediate and root, PEM (what a TLS client presents)."""
        leaf = self.certificate_pem if self.certificate_pem.endswith("\n") else self.certificate_pem + "\n"
        return leaf + self.chain_pem

    @classmethod
    def from_json(cls, value: Any) -> IssuedCertificate:
        o = _Obj(value, "certificate")
        return cls(
            certificate_pem=o.get_str("certificate_pem"),
            chain_pem=o.get_str("chain_pem"),
            serial_number=o.get_str("serial_number"),
            expires_at=o.get_time("expires_at"),
            sha256_fingerprint=o.get_str("sha256_fingerprint"),
            mandate_version=o.get_int("mandate_version"),
            key_ref=o.opt_str("key_ref"),
            profile=o.opt_str("profile"),
            raw=o.d,
        )


@dataclass(frozen=True)
class RenewalInfo:
    """ACME Renewal Information (RFC 9773) for one certificate: renew at a time between
    ``start`` and ``end`` (both in the past: renew now, e.g. after a revocation or when a newer
    mandate version retires the certificate); ask again after ``retry_after`` seconds (the
    ``Retry-After`` header, ``None`` when absent)."""

    start: _dt.datetime
    end: _dt.datetime
    retry_after: float | None = None
    explanation_url: str | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any, retry_after: float | None = None) -> RenewalInfo:
        o = _Obj(value, "renewal info")
        w = _Obj(o.get_obj("suggestedWindow"), "renewal info.suggestedWindow")
        start, end = w.get_time("start"), w.get_time("end")
        if end < start:  # RFC 9773 4.2: such a window is invalid
            raise MandateProtocolError(
                title="Malformed answer", detail="renewal info: suggestedWindow ends before it starts"
            )
        return cls(start, end, retry_after, o.opt_str("explanationURL"), o.d)


@dataclass(frozen=True)
class Certificate:
    """A certificate record. ``status``: ``issued``, ``revoked`` or ``reserved`` (signing was
    interrupted: no PEM). A revoked one has ``revocation_reason``, the RFC 5280 name (e.g.
    ``keyCompromise``, ``superseded``), and ``revocation_reason_code``, its CRLReason code
    (e.g. 1, 4; ``None`` from daemons older than it). ``newly_revoked`` is set only in the
    answer of a revocation."""

    serial_number: str
    agent_id: str
    mandate_version: int
    status: str
    not_before: _dt.datetime | None
    not_after: _dt.datetime | None
    sha256_fingerprint: str | None
    revoked_at: _dt.datetime | None
    revocation_reason: str | None
    revoked_by: str | None
    certificate_pem: str | None
    newly_revoked: bool | None = None
    revocation_reason_code: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"

    @classmethod
    def from_json(cls, value: Any) -> Certificate:
        o = _Obj(value, "certificate")
        return cls(
            serial_number=o.get_str("serial_number"),
            agent_id=o.get_str("agent_id"),
            mandate_version=o.get_int("mandate_version"),
            status=o.get_str("status"),
            not_before=o.opt_time("not_before"),
            not_after=o.opt_time("not_after"),
            sha256_fingerprint=o.opt_str("sha256_fingerprint"),
            revoked_at=o.opt_time("revoked_at"),
            revocation_reason=o.opt_str("revocation_reason"),
            revoked_by=o.opt_str("revoked_by"),
            certificate_pem=o.opt_str("certificate_pem"),
            newly_revoked=o.opt_bool("newly_revoked"),
            revocation_reason_code=o.opt_int("revocation_reason_code"),
            raw=o.d,
        )


class CertificatePage(Page[Certificate]):
    """One page of ``GET /v1/agents/{id}/certificates``, newest first."""

    @classmethod
    def from_json(cls, value: Any) -> CertificatePage:
        return cls(*cls._parse(value, "certificates", Certificate.from_json))


@dataclass(frozen=True)
class KillSwitch:
    """The answer of a kill switch (``scope`` ``agent`` or ``operator``)."""

    kill_switch_id: int
    scope: str
    target: str
    agents_suspended: list[str]
    certificates_revoked: list[str]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> KillSwitch:
        o = _Obj(value, "kill_switch")
        return cls(
            kill_switch_id=o.get_int("kill_switch_id"),
            scope=o.get_str("scope"),
            target=o.get_str("target"),
            agents_suspended=o.get_str_list("agents_suspended"),
            certificates_revoked=o.get_str_list("certificates_revoked"),
            raw=o.d,
        )


@dataclass(frozen=True)
class EabCredentials:
    """ACME external account binding credentials (single use, unusable after ``expires_at``,
    7 days on)."""

    key_id: str
    hmac_key: str
    agent_id: str
    expires_at: _dt.datetime
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> EabCredentials:
        o = _Obj(value, "eab")
        return cls(o.get_str("key_id"), o.get_str("hmac_key"), o.get_str("agent_id"), o.get_time("expires_at"), o.d)


# --- orders and decisions -------------------------------------------------------------------


def _json_size(size: str | int | float | Decimal) -> str | int:
    """A size as the daemon reads it: a plain decimal. A float goes as the decimal string of
    its shortest repr (``1e-05`` would be refused: the daemon takes no exponent forms)."""
    if isinstance(size, bool):
        raise TypeError("a size is a number, not a bool")
    if isinstance(size, float):
        return format(Decimal(repr(size)), "f")
    if isinstance(size, Decimal):
        return format(size, "f")
    return size


def _json_timestamp(ts: int | str | _dt.datetime) -> int | str:
    if isinstance(ts, _dt.datetime):
        if ts.tzinfo is None:
            raise ValueError("order timestamp must be timezone-aware")
        return int(ts.timestamp())
    return ts


#: A decision's name as the daemon gives it: ``dec_`` and 32 lowercase hex digits.
DECISION_ID = re.compile(r"dec_[0-9a-f]{32}")


class OrderState(str, Enum):
    """What happened to an order, as an order event reports it (``order_state``).

    The daemon keeps the agent's book from these events alone (it never sees the venue):
    ``NEW`` and ``AMENDED`` orders rest until a ``CANCELLED``, ``REJECTED`` or ``FILLED`` event
    names the same ``client_order_id`` (``maxOpenOrders``); ``FILLED`` and
    ``PARTIALLY_FILLED`` move the market's net position by their ``fill_quantity``
    (``maxNetPosition``, ``shortSellingAllowed``) and are the only order events that count
    towards the daily volume; new, amended and cancelled are the messages, fills the trades, of
    ``maxOrderToTradeRatio``. So report each execution once, as a fill.
    """

    NEW = "new"
    AMENDED = "amended"
    CANCELLED = "cancelled"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    REJECTED = "rejected"

    @property
    def is_fill(self) -> bool:
        """An execution: moves the position, counts as a trade and towards the daily volume."""
        return self in (OrderState.FILLED, OrderState.PARTIALLY_FILLED)

    @property
    def closes(self) -> bool:
        """Nothing of the order rests after it."""
        return self in (OrderState.CANCELLED, OrderState.REJECTED, OrderState.FILLED)


#: The states as the JSON names them, for callers that pass text.
OrderStateName = Literal["new", "amended", "cancelled", "filled", "partially_filled", "rejected"]


def _order_state(value: OrderState | str) -> OrderState:
    try:
        return OrderState(value)
    except ValueError:
        names = ", ".join(s.value for s in OrderState)
        raise ValueError(f"order_state must be one of {names}, not {value!r}") from None


def _positive(value: str | int | float | Decimal | None) -> bool:
    try:
        return value is not None and Decimal(str(value)) > 0
    except InvalidOperation:
        return False


@dataclass(frozen=True)
class Order:
    """An order, as checked by preflight and signed by custodial signing.

    ``size`` may be a ``Decimal``, a string (``"50000.00"``) or a number and needs
    ``currency``; ``timestamp`` is unix seconds, RFC 3339 text or an aware ``datetime``
    (the time of the check when absent). The version-2 controls read ``quantity`` (in the
    instrument's unit), ``price``, ``order_type`` (``market``, ``limit``, ``stop``,
    ``stop_limit``), ``client_order_id`` and ``intent`` (``new``, ``amend``, ``cancel``).
    There is no ``decision_id`` here on purpose: the daemon names its decisions, and an order
    that carries one is refused (``422 invalid-order``); the decision's id goes on the events
    that report the order (:meth:`to_event`).
    """

    action: str = "trade_execution"
    market: str | None = None
    counterparty: str | None = None
    region: str | None = None
    size: str | int | float | Decimal | None = None
    currency: str | None = None
    side: str | None = None
    timestamp: int | str | _dt.datetime | None = None
    quantity: str | int | float | Decimal | None = None
    price: str | int | float | Decimal | None = None
    order_type: str | None = None
    client_order_id: str | None = None
    intent: str | None = None

    def to_json(self) -> Json:
        out: Json = {"action": self.action}
        for name in ("market", "counterparty", "region"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        if self.size is not None:
            out["size"] = _json_size(self.size)
        if self.currency is not None:
            out["currency"] = self.currency
        if self.side is not None:
            out["side"] = self.side
        if self.timestamp is not None:
            out["timestamp"] = _json_timestamp(self.timestamp)
        for name in ("quantity", "price"):
            v = getattr(self, name)
            if v is not None:
                out[name] = _json_size(v)
        for name in ("order_type", "client_order_id", "intent"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out

    def to_event(
        self,
        agent_id: str | None = None,
        *,
        success: bool | None = None,
        realised_pnl: str | int | float | Decimal | None = None,
        order_state: OrderState | OrderStateName | None = None,
        client_order_id: str | None = None,
        fill_quantity: str | int | float | Decimal | None = None,
        fill_price: str | int | float | Decimal | None = None,
        decision_id: str | None = None,
    ) -> Json:
        """The event reporting what happened to this order, for :meth:`EventReporter.report`
        or ``report_events``. ``agent_id`` may be left to the reporter; ``realised_pnl``
        (negative: a loss, in ``currency``) counts against the mandate's ``maxDailyLoss``.

        Without ``order_state`` it is the older kind of event, an execution: the order was
        placed and traded (``success`` defaults to ``True``; ``False``: it failed), and it
        counts towards the daily volume. The order's ``client_order_id`` and ``intent`` are
        left out, as they always were.

        With ``order_state`` it is an **order event**, which keeps the daemon's book of the
        agent's open orders and positions (see :class:`OrderState`): it needs a
        ``client_order_id`` (the argument, else the order's) and the action
        ``trade_execution``; ``new``, ``filled`` and ``partially_filled`` need ``market`` and
        ``side``; ``new`` and ``amended`` a ``quantity`` above 0 (``amended``: what is open
        after the change); ``partially_filled`` a ``fill_quantity`` above 0 (``filled``
        without one: whatever was open). ``success`` is then left to the daemon (true, but
        false for ``rejected``) unless given. ``decision_id`` is the :attr:`Decision.decision_id`
        of the pre-trade check that let the order through: put it on every event of the order
        (not only ``new``), since ``GET /v1/decisions/{id}`` finds an order's fills and
        cancellation by it unless the checked order carried its ``client_order_id``. Only a
        fill moves the daily volume, so report an execution once, as a fill, not also as an
        event without ``order_state``.

        Raises ``ValueError`` for an event the daemon would refuse for its shape (so that the
        mistake shows here rather than as a dropped event in the reporter's log).
        """
        metadata = self.to_json()
        if realised_pnl is not None:
            metadata["realised_pnl"] = _json_size(realised_pnl)
        action = metadata.pop("action")
        metadata.pop("intent", None)  # an order message's, never an event's
        own_id = metadata.pop("client_order_id", None)
        if order_state is None:
            if fill_quantity is not None or fill_price is not None:
                raise ValueError("fill_quantity and fill_price belong to an order event: give order_state")
            if client_order_id is not None:
                metadata["client_order_id"] = client_order_id
            metadata["success"] = True if success is None else success
        else:
            state = _order_state(order_state)
            coid = client_order_id if client_order_id is not None else own_id
            if action != "trade_execution":
                raise ValueError(f"an order event ({state.value}) needs the action trade_execution, not {action!r}")
            if not coid:
                raise ValueError(f"an order event ({state.value}) needs a client_order_id")
            if state in (OrderState.NEW, OrderState.FILLED, OrderState.PARTIALLY_FILLED) and (
                self.market is None or self.side is None
            ):
                raise ValueError(f"an order event ({state.value}) needs market and side")
            if state in (OrderState.NEW, OrderState.AMENDED) and not _positive(self.quantity):
                raise ValueError(f"an order event ({state.value}) needs a quantity above 0")
            if state is OrderState.PARTIALLY_FILLED and not _positive(fill_quantity):
                raise ValueError("a partially_filled event needs a fill_quantity above 0")
            metadata["order_state"] = state.value
            metadata["client_order_id"] = coid
            if fill_quantity is not None:
                metadata["fill_quantity"] = _json_size(fill_quantity)
            if fill_price is not None:
                metadata["fill_price"] = _json_size(fill_price)
            if success is not None:
                metadata["success"] = success
        if decision_id is not None:
            if not DECISION_ID.fullmatch(decision_id):
                raise ValueError(f"decision_id must be dec_ and 32 lowercase hex digits, not {decision_id!r}")
            metadata["decision_id"] = decision_id
        # Flat, named as the order is: the event is the order's fields plus what happened.
        event: Json = {"action": action, **metadata}
        if agent_id is not None:
            event["agent_id"] = agent_id
        return event


@dataclass(frozen=True)
class Reason:
    """One reason for a refusal: ``code`` (e.g. ``exceeds_scope_size``), and as the API gives
    them ``limit`` (e.g. ``50000 EUR``) and ``requested`` (e.g. ``60000 EUR``). ``detail`` is
    text for people (``/v1/verify`` reasons, and the client's own fail-closed reasons).
    ``enforcement`` (``hard`` or ``soft``) is given by ``GET /v1/decisions/{id}``, which lists
    the broken soft limits among the reasons of an allowed order."""

    code: str
    limit: str | None = None
    requested: str | None = None
    detail: str | None = None
    enforcement: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> Reason:
        o = _Obj(value, "reason")
        return cls(
            code=o.get_str("code"),
            limit=o.opt_str("limit"),
            requested=o.opt_str("requested"),
            detail=o.opt_str("detail"),
            enforcement=o.opt_str("enforcement"),
        )


@dataclass(frozen=True)
class Decision:
    """The answer to "may the agent place this order now?".

    ``allowed`` is ``True`` only when the daemon said so. ``fail_closed`` is ``True`` when the
    client denied on its own because it could not get a usable answer; then ``reasons`` holds
    one of the client's codes (``mandate_unreachable``, ``mandate_not_approved``,
    ``preflight_rejected``, ``client_error``) and ``error`` the cause. ``hypothetical`` is ``True``
    when the order's ``timestamp`` was further from the daemon's clock than its
    ``policy.max_clock_skew_secs``: the answer is then a what-if for that time, never a
    permission to act now (``sign`` refuses such an order).

    ``decision_id`` (``dec_`` and 32 hex digits) names every answer the daemon gives, stored
    before it was sent: report the order placed on it with
    ``order.to_event(order_state="new", decision_id=...)`` (and its fills and cancellation
    with the same id) and :meth:`MandateClient.get_decision` shows the decision with what
    followed. ``None`` for the client's own fail-closed denials (no daemon decided) and from
    daemons older than decision ids.
    """

    allowed: bool
    reasons: tuple[Reason, ...] = ()
    fail_closed: bool = False
    hypothetical: bool = False
    #: Soft limits the order breaks: it is allowed, flagged (an incident opens when it is
    #: reported).
    soft_breaches: tuple[Reason, ...] = ()
    error: BaseException | None = field(default=None, compare=False)
    decision_id: str | None = None

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def reason(self, code: str) -> Reason | None:
        """The reason with this code, if any."""
        for r in self.reasons:
            if r.code == code:
                return r
        return None

    @classmethod
    def from_json(cls, value: Any) -> Decision:
        o = _Obj(value, "decision")
        allowed = o.get_bool("allowed")
        reasons = tuple(Reason.from_json(x) for x in o.get_list("reasons", optional=True))
        if not allowed and not reasons:
            raise MandateProtocolError(
                title="Malformed answer", detail="decision: refused without a reason"
            )
        hypothetical = o.opt_bool("hypothetical") or False
        soft = tuple(Reason.from_json(x) for x in o.get_list("soft_breaches", optional=True))
        return cls(
            allowed=allowed,
            reasons=reasons,
            hypothetical=hypothetical,
            soft_breaches=soft,
            decision_id=o.opt_str("decision_id"),
        )

    @classmethod
    def deny(cls, code: str, detail: str, error: BaseException | None = None) -> Decision:
        """A denial made by the client itself (fail closed)."""
        return cls(
            allowed=False, reasons=(Reason(code=code, detail=detail),), fail_closed=True, error=error
        )


# --- events, risk, baselines, incidents -----------------------------------------------------


def _unix_or_time(o: _Obj, key: str) -> _dt.datetime:
    """An RFC 3339 time, or unix seconds as daemons older than the v1 dialect gave some
    (decisions' events' ``at``, ``/v1/verify``'s ``not_after``)."""
    v = o.d.get(key)
    if isinstance(v, int) and not isinstance(v, bool):
        return _dt.datetime.fromtimestamp(v, _dt.timezone.utc)
    return o.get_time(key)


def _opt_order_state(o: _Obj, key: str) -> OrderState | None:
    v = o.opt_str(key)
    if v is None:
        return None
    try:
        return OrderState(v)
    except ValueError:
        raise MandateProtocolError(
            title="Malformed answer", detail=f"{o.where}.{key}: unknown order state {v!r}"
        ) from None


@dataclass(frozen=True)
class DecisionEvent:
    """One event linked to a decision (``GET /v1/decisions/{id}``): the order placed on it, its
    fills and its cancellation. Amounts are ``Decimal``; ``order_state`` is ``None`` for an
    event of the older kind (an execution without an order state)."""

    id: int
    at: _dt.datetime
    order_state: OrderState | None
    client_order_id: str | None
    market: str | None
    side: str | None
    quantity: Decimal | None
    price: Decimal | None
    fill_quantity: Decimal | None
    fill_price: Decimal | None
    decision_id: str | None
    #: The profit (negative: loss) the event realised.
    realised_pnl: Decimal | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> DecisionEvent:
        o = _Obj(value, "decision.events[]")
        return cls(
            id=o.get_int("id"),
            at=_unix_or_time(o, "at"),
            order_state=_opt_order_state(o, "order_state"),
            client_order_id=o.opt_str("client_order_id"),
            market=o.opt_str("market"),
            side=o.opt_str("side"),
            quantity=o.opt_decimal("quantity"),
            price=o.opt_decimal("price"),
            fill_quantity=o.opt_decimal("fill_quantity"),
            fill_price=o.opt_decimal("fill_price"),
            decision_id=o.opt_str("decision_id"),
            realised_pnl=o.opt_decimal("realised_pnl"),
            raw=o.d,
        )


@dataclass(frozen=True)
class DecisionRecord:
    """A stored pre-trade decision and what followed it (``GET /v1/decisions/{id}``).

    ``via`` is ``preflight`` or ``sign`` (then ``order`` is the signed payload, with the
    ``timestamp`` the daemon decided at and the ``decision_id``); ``order`` is the order as
    checked, a JSON object. ``reasons`` are every limit the order broke, hard and soft, each
    with its ``enforcement``: an allowed order lists the soft ones. ``decided_by`` is the API
    key that asked. ``events`` are, oldest first, the events naming the decision and those of
    the checked order's ``client_order_id`` from a minute before the decision on (at most
    1000): so an order checked without a ``client_order_id`` shows only the events that carry
    the ``decision_id``.
    """

    decision_id: str
    agent_id: str
    decided_at: _dt.datetime
    via: str
    allowed: bool
    hypothetical: bool
    order: Json
    reasons: tuple[Reason, ...]
    decided_by: str | None
    events: tuple[DecisionEvent, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @property
    def fills(self) -> tuple[DecisionEvent, ...]:
        """The events that executed (``filled``, ``partially_filled``)."""
        return tuple(e for e in self.events if e.order_state is not None and e.order_state.is_fill)

    @property
    def filled_quantity(self) -> Decimal:
        """What the fills that say so filled (a ``filled`` without ``fill_quantity`` counts 0)."""
        return sum((e.fill_quantity or Decimal(0) for e in self.fills), Decimal(0))

    @property
    def states(self) -> list[OrderState]:
        """The order states reported, oldest first (``new``, ``partially_filled``, ...)."""
        return [e.order_state for e in self.events if e.order_state is not None]

    @classmethod
    def from_json(cls, value: Any) -> DecisionRecord:
        o = _Obj(value, "decision")
        return cls(
            decision_id=o.get_str("decision_id"),
            agent_id=o.get_str("agent_id"),
            decided_at=o.get_time("decided_at"),
            via=o.get_str("via"),
            allowed=o.get_bool("allowed"),
            hypothetical=o.opt_bool("hypothetical") or False,
            order=o.get_obj("order"),
            reasons=tuple(Reason.from_json(x) for x in o.get_list("reasons", optional=True)),
            decided_by=o.opt_str("decided_by"),
            events=tuple(DecisionEvent.from_json(x) for x in o.get_list("events", optional=True)),
            raw=o.d,
        )


@dataclass(frozen=True)
class OrderToTrade:
    """The order flow within the default ``maxOrderToTradeRatio``'s window: ``orders`` (new,
    amended and cancelled events) and ``trades`` (fills) of the last ``window_secs``."""

    orders: int
    trades: int
    window_secs: int
    max_ratio: int

    @property
    def ratio(self) -> float:
        """Orders per trade, as the limit counts them (no trade counts as one)."""
        return self.orders / max(self.trades, 1)

    @classmethod
    def from_json(cls, value: Any) -> OrderToTrade:
        o = _Obj(value, "usage.order_to_trade")
        return cls(o.get_int("orders"), o.get_int("trades"), o.get_int("window_secs"), o.get_int("max_ratio"))


@dataclass(frozen=True)
class Usage:
    """``GET /v1/agents/{id}/usage``: what the pre-trade check counts now, beside the limits
    (``max_*``: the limit as text, e.g. ``1000000 EUR``, or ``None`` when the mandate sets none).

    ``open_orders``, ``net_positions`` (market → net quantity, long positive, flat markets
    left out) and ``order_to_trade`` come only from the order events reported
    (:class:`OrderState`): the daemon sees no venue, so they are what the bot told it. The
    fields of the order book default to empty for daemons older than them.
    """

    agent_id: str
    trading_day_start: _dt.datetime
    daily_volume: Decimal
    max_daily_volume: str | None
    daily_loss: Decimal
    max_daily_loss: str | None
    messages_last_second: int
    max_messages_per_second: int | None
    consecutive_failures: int
    open_orders: int = 0
    max_open_orders: int | None = None
    net_positions: dict[str, Decimal] = field(default_factory=dict)
    order_to_trade: OrderToTrade | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    def position(self, market: str) -> Decimal:
        """The net position in ``market`` (compared case-insensitively, as the daemon does);
        0 when flat."""
        for name, value in self.net_positions.items():
            if name.lower() == market.lower():
                return value
        return Decimal(0)

    @classmethod
    def from_json(cls, value: Any) -> Usage:
        o = _Obj(value, "usage")
        positions: dict[str, Decimal] = {}
        raw_positions = o.opt_obj("net_positions") or {}
        p = _Obj(raw_positions, "usage.net_positions")
        for market in raw_positions:
            positions[str(market)] = p.get_decimal(market)
        flow = o.opt_obj("order_to_trade")
        return cls(
            agent_id=o.get_str("agent_id"),
            trading_day_start=o.get_time("trading_day_start"),
            daily_volume=o.get_decimal("daily_volume"),
            max_daily_volume=o.opt_str("max_daily_volume"),
            daily_loss=o.get_decimal("daily_loss"),
            max_daily_loss=o.opt_str("max_daily_loss"),
            messages_last_second=o.get_int("messages_last_second"),
            max_messages_per_second=o.opt_int("max_messages_per_second"),
            consecutive_failures=o.get_int("consecutive_failures"),
            open_orders=o.opt_int("open_orders") or 0,
            max_open_orders=o.opt_int("max_open_orders"),
            net_positions=positions,
            order_to_trade=None if flow is None else OrderToTrade.from_json(flow),
            raw=o.d,
        )


@dataclass(frozen=True)
class ScoredEvent:
    id: int
    score: float | None

    @classmethod
    def from_json(cls, value: Any) -> ScoredEvent:
        o = _Obj(value, "event")
        return cls(o.get_int("id"), o.opt_float("score"))


@dataclass(frozen=True)
class IncidentRef:
    id: int
    agent_id: str
    kind: str

    @classmethod
    def from_json(cls, value: Any) -> IncidentRef:
        o = _Obj(value, "incident")
        return cls(o.get_int("id"), o.get_str("agent_id"), o.get_str("kind"))


@dataclass(frozen=True)
class EventsAccepted:
    """The answer of ``POST /v1/events``: ids and scores in request order, opened incidents."""

    accepted: int
    events: list[ScoredEvent]
    incidents: list[IncidentRef]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> EventsAccepted:
        o = _Obj(value, "events")
        return cls(
            accepted=o.get_int("accepted"),
            events=[ScoredEvent.from_json(x) for x in o.get_list("events")],
            incidents=[IncidentRef.from_json(x) for x in o.get_list("incidents", optional=True)],
            raw=o.d,
        )


class RiskBand(str, Enum):
    """``low`` below 0.5, ``medium`` below the warning threshold, ``high`` from it;
    ``not_monitored`` before a behavioural baseline is approved (no anomaly score yet: not the
    same as low risk; the mandate's limits are enforced all the same)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    NOT_MONITORED = "not_monitored"


@dataclass(frozen=True)
class Contribution:
    """One feature's share of a score (``size``, ``frequency``, ``instrument``,
    ``time_of_day``, ``geography``)."""

    feature: str
    contribution: float
    value: float
    weight: float
    observed: str
    expected: str

    @classmethod
    def from_json(cls, value: Any) -> Contribution:
        o = _Obj(value, "contribution")
        return cls(
            feature=o.get_str("feature"),
            contribution=o.get_float("contribution"),
            value=o.get_float("value"),
            weight=o.get_float("weight"),
            observed=o.opt_str("observed") or "-",
            expected=o.opt_str("expected") or "-",
        )


@dataclass(frozen=True)
class RiskScore:
    """``GET /v1/agents/{id}/risk-score``: ``score`` is the API's ``risk_score`` (0..1, decayed
    to now; ``None`` while not monitored), ``band`` its ``risk_band``."""

    agent_id: str
    score: float | None
    band: RiskBand
    contributions: list[Contribution]
    computed_at: _dt.datetime | None
    baseline_version: int | None
    warning_threshold: float
    auto_revoke_threshold: float
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def monitored(self) -> bool:
        """Whether an approved baseline scores the agent's behaviour."""
        return self.band is not RiskBand.NOT_MONITORED

    @property
    def top_feature(self) -> str | None:
        """The feature that contributed most, or ``None`` before the first score."""
        if not self.contributions:
            return None
        return max(self.contributions, key=lambda c: c.contribution).feature

    @classmethod
    def from_json(cls, value: Any) -> RiskScore:
        o = _Obj(value, "risk_score")
        try:
            band = RiskBand(o.get_str("risk_band"))
        except ValueError:
            raise MandateProtocolError(
                title="Malformed answer", detail=f"risk_score.risk_band: unknown band {o.d['risk_band']!r}"
            ) from None
        return cls(
            agent_id=o.get_str("agent_id"),
            score=o.opt_float("risk_score"),
            band=band,
            contributions=[Contribution.from_json(x) for x in o.get_list("contributions")],
            computed_at=o.opt_time("computed_at"),
            baseline_version=o.opt_int("baseline_version"),
            warning_threshold=o.get_float("warning_threshold"),
            auto_revoke_threshold=o.get_float("auto_revoke_threshold"),
            raw=o.d,
        )


@dataclass(frozen=True)
class BaselineVersion:
    """One baseline version; ``baseline`` holds the learnt statistics as the API gives them."""

    agent_id: str
    version: int
    status: str
    baseline: Json
    learnt_by: str | None
    created_at: _dt.datetime | None
    decided_by: str | None
    decided_at: _dt.datetime | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def events(self) -> int | None:
        n = self.baseline.get("events")
        return n if isinstance(n, int) else None

    @classmethod
    def from_json(cls, value: Any) -> BaselineVersion:
        o = _Obj(value, "baseline")
        return cls(
            agent_id=o.get_str("agent_id"),
            version=o.get_int("version"),
            status=o.get_str("status"),
            baseline=o.get_obj("baseline"),
            learnt_by=o.opt_str("learnt_by"),
            created_at=o.opt_time("created_at"),
            decided_by=o.opt_str("decided_by"),
            decided_at=o.opt_time("decided_at"),
            raw=o.d,
        )


@dataclass(frozen=True)
class Incident:
    id: int
    agent_id: str
    kind: str
    status: str
    risk_score: float | None
    threshold: float | None
    contributions: list[Contribution]
    event_id: int | None
    kill_switch_id: int | None
    created_at: _dt.datetime | None
    acknowledged_by: str | None
    acknowledged_at: _dt.datetime | None
    resolved_by: str | None
    resolved_at: _dt.datetime | None
    resolution: str | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Incident:
        o = _Obj(value, "incident")
        return cls(
            id=o.get_int("id"),
            agent_id=o.get_str("agent_id"),
            kind=o.get_str("kind"),
            status=o.get_str("status"),
            risk_score=o.opt_float("risk_score"),
            threshold=o.opt_float("threshold"),
            contributions=[Contribution.from_json(x) for x in o.get_list("contributions", optional=True)],
            event_id=o.opt_int("event_id"),
            kill_switch_id=o.opt_int("kill_switch_id"),
            created_at=o.opt_time("created_at"),
            acknowledged_by=o.opt_str("acknowledged_by"),
            acknowledged_at=o.opt_time("acknowledged_at"),
            resolved_by=o.opt_str("resolved_by"),
            resolved_at=o.opt_time("resolved_at"),
            resolution=o.opt_str("resolution"),
            raw=o.d,
        )


class IncidentPage(Page[Incident]):
    """One page of ``GET /v1/incidents``, newest first."""

    @classmethod
    def from_json(cls, value: Any) -> IncidentPage:
        return cls(*cls._parse(value, "incidents", Incident.from_json))


# --- custodial signing and verification -----------------------------------------------------


@dataclass(frozen=True)
class SignedOrder:
    """A custodially signed order: hand ``payload``, ``signature``, ``certificate_pem`` and
    ``chain_pem`` to the exchange. ``payload`` and ``signature`` are base64.

    ``decision_id`` names the decision that let the order through; the signed payload carries
    it too, as its last field (:attr:`order`), so a relying party can cite it. Report the
    order's events with it (see :meth:`Order.to_event`). ``None`` from daemons older than
    decision ids."""

    allowed: bool
    payload: str
    signature: str
    algorithm: str
    certificate_serial: str
    certificate_pem: str
    chain_pem: str
    decision_id: str | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def order(self) -> Json:
        """The signed order, decoded: the fields as sent, the ``timestamp`` the daemon decided
        at and the ``decision_id``."""
        value = json.loads(self.payload_bytes.decode("utf-8"))
        if not isinstance(value, dict):
            raise MandateProtocolError(title="Malformed answer", detail="signed_order.payload: not an object")
        return value

    @property
    def payload_bytes(self) -> bytes:
        """The signed bytes: the order's canonical JSON."""
        return base64.b64decode(self.payload)

    @property
    def signature_bytes(self) -> bytes:
        return base64.b64decode(self.signature)

    @classmethod
    def from_json(cls, value: Any) -> SignedOrder:
        o = _Obj(value, "signed_order")
        return cls(
            allowed=o.get_bool("allowed"),
            payload=o.get_str("payload"),
            signature=o.get_str("signature"),
            algorithm=o.get_str("algorithm"),
            certificate_serial=o.get_str("certificate_serial"),
            certificate_pem=o.get_str("certificate_pem"),
            chain_pem=o.get_str("chain_pem"),
            decision_id=o.opt_str("decision_id"),
            raw=o.d,
        )


@dataclass(frozen=True)
class Verification:
    """The verdict of ``POST /v1/verify``: ``valid`` exactly when ``reasons`` is empty.
    ``serial_number`` and ``not_after`` are the agent certificate's; ``revocation`` is
    ``{"status": "good"|"revoked"|"unknown", ...}``, a revoked one with ``revoked_at`` (RFC 3339)
    and ``revocation_reason`` (name) with ``revocation_reason_code`` beside, as certificates
    give them."""

    valid: bool
    agent_id: str | None
    serial_number: str | None
    not_after: _dt.datetime | None
    revocation: Json | None
    mandate: Json | None
    order: Json | None
    reasons: list[Reason]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @classmethod
    def from_json(cls, value: Any) -> Verification:
        o = _Obj(value, "verification")
        return cls(
            valid=o.get_bool("valid"),
            agent_id=o.opt_str("agent_id"),
            # ``serial`` and unix seconds: daemons older than the v1 dialect.
            serial_number=o.opt_str("serial_number") if "serial_number" in o.d else o.opt_str("serial"),
            not_after=None if o.d.get("not_after") is None else _unix_or_time(o, "not_after"),
            revocation=o.opt_obj("revocation"),
            mandate=o.opt_obj("mandate"),
            order=o.opt_obj("order"),
            reasons=[Reason.from_json(x) for x in o.get_list("reasons", optional=True)],
            raw=o.d,
        )


# --- webhooks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """A webhook endpoint. ``secret`` (``whsec_…``) is set only in the answer that created it."""

    id: str
    url: str
    events: list[str]
    operator: str | None
    created_by: str | None
    created_at: _dt.datetime | None
    disabled_at: _dt.datetime | None
    secret: str | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Webhook:
        o = _Obj(value, "webhook")
        return cls(
            id=o.get_str("id"),
            url=o.get_str("url"),
            events=o.get_str_list("events"),
            operator=o.opt_str("operator"),
            created_by=o.opt_str("created_by"),
            created_at=o.opt_time("created_at"),
            disabled_at=o.opt_time("disabled_at"),
            secret=o.opt_str("secret"),
            raw=o.d,
        )


class WebhookPage(Page[Webhook]):
    """One page of ``GET /v1/webhooks``, by id."""

    @classmethod
    def from_json(cls, value: Any) -> WebhookPage:
        return cls(*cls._parse(value, "webhooks", Webhook.from_json))


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery: ``status`` ``pending``, ``delivered`` or ``failed``."""

    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: _dt.datetime | None
    last_attempt_at: _dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: _dt.datetime | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> WebhookDelivery:
        o = _Obj(value, "delivery")
        return cls(
            id=o.get_int("id"),
            event_id=o.get_str("event_id"),
            event_type=o.get_str("event_type"),
            status=o.get_str("status"),
            attempts=o.get_int("attempts"),
            next_attempt_at=o.opt_time("next_attempt_at"),
            last_attempt_at=o.opt_time("last_attempt_at"),
            last_status_code=o.opt_int("last_status_code"),
            last_error=o.opt_str("last_error"),
            delivered_at=o.opt_time("delivered_at"),
            raw=o.d,
        )


class WebhookDeliveryPage(Page[WebhookDelivery]):
    """One page of ``GET /v1/webhooks/{id}/deliveries``, newest first."""

    @classmethod
    def from_json(cls, value: Any) -> WebhookDeliveryPage:
        return cls(*cls._parse(value, "deliveries", WebhookDelivery.from_json))
