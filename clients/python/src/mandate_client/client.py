"""``MandateClient``: the REST API of the mandate daemon, over the standard library's HTTP.

Every method raises :class:`MandateError` (or a subclass) for anything but a 2xx answer, except
:meth:`MandateClient.preflight`, :meth:`MandateClient.risk_band` and :meth:`MandateClient.ready`,
which fail closed unless asked otherwise (see the README's fail-closed table).
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import logging
import math
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from ._version import __version__
from .errors import MandateError, MandateProtocolError, MandateUnavailable
from .keys import generate_key_and_csr, save_private_key
from .models import (
    Agent,
    AgentPage,
    ApiKey,
    ApiKeyPage,
    BaselineVersion,
    Certificate,
    CertificatePage,
    Decision,
    DecisionRecord,
    EabCredentials,
    EventsAccepted,
    Incident,
    IncidentPage,
    IssuedCertificate,
    Json,
    MandateVersion,
    KillSwitch,
    Order,
    Organization,
    OrganizationPage,
    Page,
    Person,
    PersonPage,
    RenewalInfo,
    RiskBand,
    RiskScore,
    SignedOrder,
    Usage,
    Verification,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookPage,
    _json_size,
)

__all__ = [
    "MandateClient",
    "Enrollment",
    "MAX_EVENTS_PER_REQUEST",
    "UNREACHABLE",
    "NOT_APPROVED",
    "REJECTED",
    "CLIENT_ERROR",
]

log = logging.getLogger("mandate_client")

#: ``POST /v1/events`` takes 1 to 1000 events per request (and at most ``http.max_body_bytes``,
#: 64 KiB by default).
MAX_EVENTS_PER_REQUEST = 1000

#: Reason codes of the decisions :meth:`MandateClient.preflight` makes itself (fail closed).
UNREACHABLE = "mandate_unreachable"
NOT_APPROVED = "mandate_not_approved"
REJECTED = "preflight_rejected"
CLIENT_ERROR = "client_error"

_MAX_ANSWER_BYTES = 32 * 1024 * 1024
_NO_BODY: Any = object()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise TypeError("datetimes sent to mandate must be timezone-aware")
        return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Order):
        return value.to_json()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plain_number(value: float) -> str:
    """A float as a JSON number the daemon takes: plain decimal digits, no exponent form and
    no ``-0`` (``1e-05`` → ``0.00001``, ``-0.0`` → ``0``)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a JSON number")
    if value == 0:
        return "0"
    return format(Decimal(repr(value)), "f")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _plain_number(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _encode(value: Any, out: list[str], depth: int = 0) -> None:
    if depth > 200:
        raise ValueError("the JSON nests too deep")
    if value is None or isinstance(value, (str, bool)):
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_plain_number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(_key(k)))
            out.append(":")
            _encode(v, out, depth + 1)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out, depth + 1)
        out.append("]")
    else:
        _encode(_json_default(value), out, depth + 1)


def encode_json(value: Any) -> bytes:
    """JSON as the client sends it: ``Decimal`` as a string, aware ``datetime`` as RFC 3339,
    and every float as a plain decimal number (the daemon refuses exponent forms such as
    ``1e-05`` and ``-0``; NaN and infinities raise ``ValueError``)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def _seg(value: str | int) -> str:
    """One URL path segment."""
    return urllib.parse.quote(str(value), safe="")


def _retry_after(headers: Any) -> float | None:
    v = headers.get("Retry-After") if headers is not None else None
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None


T = TypeVar("T")


def _walk(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """The items of every page: ``fetch(cursor)`` from ``None`` on, each time with the page
    before's ``next_cursor``, until a page has none (or no items)."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if not page.next_cursor or not page.items:
            return
        cursor = page.next_cursor


@dataclass(frozen=True)
class Enrollment:
    """What :meth:`MandateClient.enroll` made: the bot's private key (PEM; saved 0600 to
    ``key_path`` when one was given) and the certificate issued for it."""

    private_key_pem: bytes
    certificate: IssuedCertificate
    key_path: Path | None = None


class MandateClient:
    """A client of one mandate daemon.

    ``base_url`` is the daemon (or its TLS proxy), e.g. ``https://mandate.example``;
    ``api_key`` the ``mk_…`` key (``None`` for the public endpoints only); ``timeout`` seconds
    per request. Thread-safe: every request opens its own connection.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 10,
        *,
        user_agent: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self._api_key = api_key
        self._user_agent = user_agent or f"mandate-client-python/{__version__}"
        self._opener = urllib.request.build_opener()

    def __repr__(self) -> str:
        return f"MandateClient({self.base_url!r}, api_key={'***' if self._api_key else None})"

    def with_key(self, api_key: str | None) -> MandateClient:
        """The same daemon and settings with another API key."""
        return MandateClient(self.base_url, api_key, self.timeout, user_agent=self._user_agent)

    # --- transport ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = _NO_BODY,
        query: Mapping[str, Any] | None = None,
        auth: bool = True,
        timeout: float | None = None,
        accept: str = "application/json",
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request; returns status, headers and body of a 2xx answer, raises otherwise.

        ``body`` is sent as JSON when given (``_NO_BODY``: no body at all).
        """
        url = self.base_url + path
        if query:
            q = {k: str(v) for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        request_id = secrets.token_hex(12)
        headers = {
            "Accept": accept,
            "User-Agent": self._user_agent,
            "X-Request-Id": request_id,
        }
        data: bytes | None = None
        if body is not _NO_BODY:
            data = encode_json(body)
            headers["Content-Type"] = "application/json"
        if auth and self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        wait = self.timeout if timeout is None else timeout
        try:
            with self._opener.open(req, timeout=wait) as resp:
                raw = resp.read(_MAX_ANSWER_BYTES)
                return resp.status, resp.headers, raw
        except urllib.error.HTTPError as e:
            try:
                raw = e.read(_MAX_ANSWER_BYTES)
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                e.close()
            rid = e.headers.get("X-Request-Id", request_id) if e.headers else request_id
            problem: Mapping[str, Any] | None = None
            text = ""
            try:
                parsed = json.loads(raw.decode("utf-8")) if raw else None
                if isinstance(parsed, dict):
                    problem = parsed
            except (ValueError, UnicodeDecodeError):
                text = raw.decode("utf-8", "replace")
            raise MandateError.from_problem(
                e.code,
                problem,
                reason=str(e.reason),
                text=text,
                request_id=rid,
                retry_after=_retry_after(e.headers),
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, TimeoutError) as e:
            cause = e.reason if isinstance(e, urllib.error.URLError) else e
            raise MandateUnavailable(
                title="Unavailable",
                detail=f"{method} {url}: {type(cause).__name__}: {cause}",
                request_id=request_id,
            ) from e

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = _NO_BODY,
        query: Mapping[str, Any] | None = None,
        auth: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """One request whose 2xx answer is JSON; returns the parsed JSON."""
        status, headers, raw = self.request(
            method, path, body=body, query=query, auth=auth, timeout=timeout
        )
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise MandateProtocolError(
                title="Malformed answer",
                status=status,
                detail=f"{method} {path}: the {status} answer is not JSON: {raw[:200]!r}",
                request_id=headers.get("X-Request-Id"),
            ) from None

    def _text(self, path: str, accept: str, *, auth: bool = True) -> str:
        _, _, raw = self.request("GET", path, auth=auth, accept=accept)
        return raw.decode("utf-8")

    # --- public endpoints ---------------------------------------------------------------------

    def health(self) -> Json:
        """``GET /healthz`` (no key)."""
        value: Json = self.call("GET", "/healthz", auth=False)
        return value

    def ready(self, timeout: float | None = None) -> bool:
        """``GET /readyz`` answered 200 (database and HSM answer). Never raises."""
        try:
            self.request("GET", "/readyz", auth=False, timeout=timeout)
            return True
        except MandateError:
            return False

    def wait_until_ready(self, timeout: float = 60, interval: float = 0.1) -> None:
        """Polls ``/readyz`` until it answers 200; raises :class:`MandateUnavailable` after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.ready(timeout=min(self.timeout, max(0.1, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise MandateUnavailable(
                    title="Unavailable", detail=f"{self.base_url} not ready within {timeout} s"
                )
            time.sleep(interval)

    def root_pem(self) -> str:
        """The root certificate, PEM (no key)."""
        return self._text("/ca/root.pem", "application/x-pem-file", auth=False)

    def intermediate_pem(self) -> str:
        """The issuing (intermediate) certificate, PEM (no key)."""
        return self._text("/ca/intermediate.pem", "application/x-pem-file", auth=False)

    def chain_pem(self) -> str:
        """The intermediate then the root, PEM (no key)."""
        return self._text("/ca/chain.pem", "application/x-pem-file", auth=False)

    # --- organizations and people (CA staff) -------------------------------------------------

    def create_organization(
        self,
        id: str,
        legal_name: str,
        legal_entities: Sequence[str] | None = None,
        regulator_id: str | None = None,
        approvals_required: int | None = None,
        default_profile: str | None = None,
        max_validity_secs: int | None = None,
    ) -> Organization:
        """``POST /v1/organizations`` (admin, CA staff). ``id`` is a DNS label (agents are named
        under it); mandates must name ``legal_name`` or one of ``legal_entities`` as their
        ``operator``; ``approvals_required`` is 1 (the daemon's default) or 2 compliance people;
        ``default_profile`` is the certificate profile of its agents' requests that name none and
        ``max_validity_secs`` the longest lifetime their certificates may have."""
        body: Json = {"id": id, "legal_name": legal_name}
        if legal_entities is not None:
            body["legal_entities"] = list(legal_entities)
        if regulator_id is not None:
            body["regulator_id"] = regulator_id
        if approvals_required is not None:
            body["approvals_required"] = approvals_required
        if default_profile is not None:
            body["default_profile"] = default_profile
        if max_validity_secs is not None:
            body["max_validity_secs"] = max_validity_secs
        return Organization.from_json(self.call("POST", "/v1/organizations", body=body))

    def list_organizations(self, limit: int | None = None, cursor: str | None = None) -> OrganizationPage:
        """``GET /v1/organizations``: one page, by id. CA staff see every organization, everyone
        else their own."""
        return OrganizationPage.from_json(
            self.call("GET", "/v1/organizations", query={"limit": limit, "cursor": cursor})
        )

    def iter_organizations(self, page_size: int = 100) -> Iterator[Organization]:
        """Every organization :meth:`list_organizations` shows, page by page."""
        return _walk(lambda cursor: self.list_organizations(page_size, cursor))

    def get_organization(self, id: str) -> Organization:
        """``GET /v1/organizations/{id}`` (another organization than the caller's is a 404)."""
        return Organization.from_json(self.call("GET", f"/v1/organizations/{_seg(id)}"))

    def create_person(
        self,
        id: str,
        name: str,
        roles: Sequence[str],
        organization: str | None = None,
        email: str | None = None,
    ) -> Person:
        """``POST /v1/people`` (admin, CA staff). ``id``: 1 to 64 of a-z, 0-9, ``.``, ``_``,
        ``-``. People of an ``organization`` hold ``operator``, ``compliance`` and ``auditor``;
        without one the person is CA staff (``admin``, ``auditor``)."""
        body: Json = {"id": id, "name": name, "roles": list(roles)}
        if organization is not None:
            body["organization"] = organization
        if email is not None:
            body["email"] = email
        return Person.from_json(self.call("POST", "/v1/people", body=body))

    def list_people(
        self, organization: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> PersonPage:
        """``GET /v1/people`` (admin, CA staff): one page, by id, optionally of one organization."""
        return PersonPage.from_json(
            self.call(
                "GET",
                "/v1/people",
                query={"organization": organization, "limit": limit, "cursor": cursor},
            )
        )

    def iter_people(self, organization: str | None = None, page_size: int = 100) -> Iterator[Person]:
        """Every person (of ``organization``, if given), page by page."""
        return _walk(lambda cursor: self.list_people(organization, page_size, cursor))

    def disable_person(self, id: str) -> Person:
        """``POST /v1/people/{id}/disable`` (admin, CA staff): every key of the person stops at
        once (401). Idempotent: ``newly_disabled`` is false the second time."""
        value = self.call("POST", f"/v1/people/{_seg(id)}/disable", body={})
        o = value if isinstance(value, dict) else {}
        newly = o.get("newly_disabled")
        if not isinstance(newly, bool):
            raise MandateProtocolError(
                title="Malformed answer", detail="disable person: no newly_disabled boolean"
            )
        return Person.from_json(o.get("person"), newly_disabled=newly)

    # --- API keys (admin) ---------------------------------------------------------------------

    def create_api_key(
        self, role: str, label: str, agent_id: str | None = None, person: str | None = None
    ) -> ApiKey:
        """``POST /v1/api-keys`` (admin, CA staff). A key acts for a ``person`` (roles admin,
        operator, compliance, auditor: one of the person's roles) or, with role ``agent``, for
        the agent ``agent_id``. The answer's ``api_key`` is shown only this once."""
        body: Json = {"role": role, "label": label}
        if agent_id is not None:
            body["agent_id"] = agent_id
        if person is not None:
            body["person"] = person
        return ApiKey.from_json(self.call("POST", "/v1/api-keys", body=body))

    def list_api_keys(self, limit: int | None = None, cursor: str | None = None) -> ApiKeyPage:
        """``GET /v1/api-keys`` (admin): one page, by id, revoked keys included, never a secret."""
        return ApiKeyPage.from_json(
            self.call("GET", "/v1/api-keys", query={"limit": limit, "cursor": cursor})
        )

    def iter_api_keys(self, page_size: int = 100) -> Iterator[ApiKey]:
        """Every API key, page by page."""
        return _walk(lambda cursor: self.list_api_keys(page_size, cursor))

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """``POST /v1/api-keys/{id}/revoke`` (admin)."""
        value = self.call("POST", f"/v1/api-keys/{_seg(key_id)}/revoke")
        if not isinstance(value, dict):
            raise MandateProtocolError(title="Malformed answer", detail="revoke: not an object")
        return ApiKey.from_json(value.get("api_key"))

    # --- agents and mandates ------------------------------------------------------------------

    def register_agent(
        self,
        agent_id: str,
        name: str,
        mandate: Mapping[str, Any],
        *,
        organization: str | None = None,
    ) -> Agent:
        """``POST /v1/agents`` (operator): the agent starts ``pending_approval``.

        ``organization`` defaults to the caller's (another one is a 404). The mandate's
        ``operator`` must be the organization's legal name or one of its legal entities, and
        may be left out (then it is the legal name)."""
        body: Json = {"agent_id": agent_id, "name": name, "mandate": dict(mandate)}
        if organization is not None:
            body["organization"] = organization
        return Agent.from_json(self.call("POST", "/v1/agents", body=body))

    def get_agent(self, agent_id: str) -> Agent:
        """``GET /v1/agents/{id}``."""
        return Agent.from_json(self.call("GET", f"/v1/agents/{_seg(agent_id)}"))

    def list_agents(
        self,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        status: str | None = None,
        mandate_status: str | None = None,
        q: str | None = None,
    ) -> AgentPage:
        """``GET /v1/agents``: one page, ordered by agent id; filtered by the agent's
        ``status``, its latest mandate's ``mandate_status`` (``pending_approval``: what waits
        for compliance) and ``q`` (id or name contains, case-insensitive)."""
        query = {
            "limit": limit,
            "cursor": cursor,
            "status": status,
            "mandate_status": mandate_status,
            "q": q,
        }
        return AgentPage.from_json(self.call("GET", "/v1/agents", query=query))

    def iter_agents(
        self,
        page_size: int = 100,
        *,
        status: str | None = None,
        mandate_status: str | None = None,
        q: str | None = None,
    ) -> Iterator[Agent]:
        """Every agent (matching the filters), page by page."""
        return _walk(
            lambda cursor: self.list_agents(
                page_size, cursor, status=status, mandate_status=mandate_status, q=q
            )
        )

    def submit_mandate(self, agent_id: str, mandate: Mapping[str, Any]) -> Agent:
        """``POST /v1/agents/{id}/mandate`` (operator): the next version, ``pending_approval``."""
        return Agent.from_json(
            self.call("POST", f"/v1/agents/{_seg(agent_id)}/mandate", body={"mandate": dict(mandate)})
        )

    def _decide(self, path: str, version: int | None, comment: str | None) -> Any:
        body: Json = {}
        if version is not None:
            body["version"] = version
        if comment is not None:
            body["comment"] = comment
        return self.call("POST", path, body=body)

    def mandates(self, agent_id: str) -> list[MandateVersion]:
        """``GET /v1/agents/{id}/mandates``: every version, newest first; the pending one with
        its field-by-field changes against the approved one (read them before approving)."""
        value = self.call("GET", f"/v1/agents/{_seg(agent_id)}/mandates")
        if not isinstance(value, dict) or not isinstance(value.get("items"), list):
            raise MandateProtocolError(title="Malformed answer", detail="mandates: no items list")
        return [MandateVersion.from_json(v) for v in value["items"]]

    def approve(self, agent_id: str, version: int, comment: str | None = None) -> Agent:
        """``POST /v1/agents/{id}/approve`` (compliance): approves mandate version ``version``,
        which must be the pending one (else 409 ``wrong-state``): nobody approves a version they
        did not read. Approving never lifts a suspension: see :meth:`reinstate`.

        The approver must be another person than the one who registered the agent or requested
        the version (else 403 ``segregation-of-duties``). When the organization requires two
        approvals, the first answers ``pending_approval`` with ``approvals_recorded`` 1 and
        ``approvals_required`` 2, and the same person approving again is a 409 ``conflict``."""
        return Agent.from_json(self._decide(f"/v1/agents/{_seg(agent_id)}/approve", version, comment))

    def reject(self, agent_id: str, version: int, comment: str | None = None) -> Agent:
        """``POST /v1/agents/{id}/reject`` (compliance): rejects the pending version ``version``."""
        return Agent.from_json(self._decide(f"/v1/agents/{_seg(agent_id)}/reject", version, comment))

    def reinstate(self, agent_id: str, comment: str | None = None) -> Agent:
        """``POST /v1/agents/{id}/reinstate`` (compliance, four eyes): lifts a suspension (kill
        switch, automatic revocation once its incident is resolved); the agent is active again
        with its approved mandate. A pending version stays pending."""
        return Agent.from_json(self._decide(f"/v1/agents/{_seg(agent_id)}/reinstate", None, comment))

    # --- certificates -------------------------------------------------------------------------

    def certify(
        self,
        agent_id: str,
        csr: str | bytes | None = None,
        *,
        hsm_key_type: str | None = None,
        validity_days: int | None = None,
        profile: str | None = None,
    ) -> IssuedCertificate:
        """``POST /v1/agents/{id}/certify``: a certificate for the CSR's key (see
        :func:`generate_key_and_csr`), or, with ``hsm_key_type`` instead, for a key generated
        inside the HSM for custodial signing.

        The lifetime comes from a certificate ``profile`` (``agent``: 7 days, ``shortlived``:
        24 h, ``extended``: the CA's maximum, or one its operator configured) or, the older way,
        ``validity_days``; at most one of them. Neither: the organization's or the CA's default
        profile."""
        if (csr is None) == (hsm_key_type is None):
            raise ValueError("give exactly one of csr and hsm_key_type")
        if profile is not None and validity_days is not None:
            raise ValueError("give at most one of profile and validity_days")
        body: Json = {}
        if csr is not None:
            body["csr"] = csr.decode("ascii") if isinstance(csr, bytes) else csr
        else:
            body["hsm_key_type"] = hsm_key_type
        if validity_days is not None:
            body["validity_days"] = validity_days
        if profile is not None:
            body["profile"] = profile
        return IssuedCertificate.from_json(
            self.call("POST", f"/v1/agents/{_seg(agent_id)}/certify", body=body)
        )

    def enroll(
        self,
        agent_id: str,
        key_type: str = "ec-p256",
        *,
        key_path: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        validity_days: int | None = None,
        profile: str | None = None,
    ) -> Enrollment:
        """Makes a key pair and CSR locally, saves the private key (mode 0600) to ``key_path``
        if given, then has it certified. The key never leaves this process otherwise.

        The key is on disk **before** the CA is asked, so no certificate is ever issued for a
        key that could not be saved (a full disk, an existing file). If certify fails, the key
        stays where it was written: the answer may have been lost after the CA issued. An
        existing ``key_path`` raises ``FileExistsError`` before anything is made, unless
        ``overwrite``: then the new key goes to ``<key_path>.next`` first and replaces
        ``key_path`` only once its certificate came, so a failure leaves the old key (and its
        certificate) usable. To keep a certificate valid over time, see
        :class:`~mandate_client.CertificateKeeper`."""
        if profile is not None and validity_days is not None:
            raise ValueError("give at most one of profile and validity_days")
        target = Path(key_path) if key_path is not None else None
        if target is not None and not overwrite and os.path.lexists(target):
            raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
        key_pem, csr_pem = generate_key_and_csr(agent_id, key_type)
        pending: Path | None = None
        if target is not None:
            if os.path.lexists(target):
                pending = target.with_name(target.name + ".next")
                save_private_key(pending, key_pem, overwrite=True)
            else:
                save_private_key(target, key_pem)
        cert = self.certify(agent_id, csr_pem, validity_days=validity_days, profile=profile)
        if pending is not None and target is not None:
            os.replace(pending, target)
        return Enrollment(key_pem, cert, target)

    def list_certificates(
        self, agent_id: str, limit: int | None = None, cursor: str | None = None
    ) -> CertificatePage:
        """``GET /v1/agents/{id}/certificates``: one page, newest first."""
        return CertificatePage.from_json(
            self.call(
                "GET",
                f"/v1/agents/{_seg(agent_id)}/certificates",
                query={"limit": limit, "cursor": cursor},
            )
        )

    def iter_certificates(self, agent_id: str, page_size: int = 100) -> Iterator[Certificate]:
        """Every certificate of the agent, newest first, page by page."""
        return _walk(lambda cursor: self.list_certificates(agent_id, page_size, cursor))

    def get_certificate(self, serial: str) -> Certificate:
        """``GET /v1/certificates/{serial}``."""
        return Certificate.from_json(self.call("GET", f"/v1/certificates/{_seg(serial)}"))

    def download_certificate(self, serial: str) -> str:
        """``GET /v1/certificates/{serial}/pem``: the certificate, the intermediate and the
        root, PEM."""
        return self._text(f"/v1/certificates/{_seg(serial)}/pem", "application/pem-certificate-chain")

    def revoke_certificate(
        self, serial: str, reason: str | int = "unspecified", comment: str | None = None
    ) -> Certificate:
        """``POST /v1/certificates/{serial}/revoke``. Idempotent: ``newly_revoked`` is false
        the second time. ``reason``: RFC 5280 name (``keyCompromise``, ``superseded``,
        ``cessationOfOperation``, …) or code."""
        body: Json = {"reason": reason}
        if comment is not None:
            body["comment"] = comment
        return Certificate.from_json(
            self.call("POST", f"/v1/certificates/{_seg(serial)}/revoke", body=body)
        )

    def revoke_agent(self, agent_id: str, reason: str) -> KillSwitch:
        """Kill switch for one agent: ``POST /v1/agents/{id}/revoke``; suspends it and revokes
        all its certificates."""
        return KillSwitch.from_json(
            self.call("POST", f"/v1/agents/{_seg(agent_id)}/revoke", body={"reason": reason})
        )

    def revoke_operator(self, organization: str, reason: str) -> KillSwitch:
        """Kill switch for every agent of an organization: ``POST /v1/operators/{org}/revoke``."""
        return KillSwitch.from_json(
            self.call("POST", f"/v1/operators/{_seg(organization)}/revoke", body={"reason": reason})
        )

    def create_eab(self, agent_id: str) -> EabCredentials:
        """``POST /v1/agents/{id}/eab``: single-use ACME external account binding credentials."""
        return EabCredentials.from_json(self.call("POST", f"/v1/agents/{_seg(agent_id)}/eab"))

    def renewal_info(self, cert_id: str) -> RenewalInfo:
        """``GET /acme/renewal-info/{certID}`` (RFC 9773 ACME Renewal Information, no key):
        when the CA suggests renewing the certificate. ``cert_id`` is
        :func:`~mandate_client.ari_cert_id` of it. A window already past means renew now (the
        certificate was revoked, or a newer mandate version retires it)."""
        status, headers, raw = self.request(
            "GET", f"/acme/renewal-info/{_seg(cert_id)}", auth=False
        )
        try:
            value = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise MandateProtocolError(
                title="Malformed answer",
                status=status,
                detail=f"renewal info: the {status} answer is not JSON: {raw[:200]!r}",
                request_id=headers.get("X-Request-Id"),
            ) from None
        return RenewalInfo.from_json(value, _retry_after(headers))

    # --- pre-trade check (fails closed) -------------------------------------------------------

    def preflight(
        self,
        agent_id: str,
        order: Order | Mapping[str, Any],
        *,
        strict: bool = False,
        timeout: float | None = None,
    ) -> Decision:
        """``POST /v1/agents/{id}/preflight``: may the agent place this order now?

        Fails closed: unless ``strict``, this never raises. When no usable answer comes it
        returns a denial made by the client (``fail_closed=True``) with one reason:

        * ``mandate_unreachable``: network error, timeout, 429, 5xx, or an answer that is not
          a decision;
        * ``mandate_not_approved``: ``409 mandate-not-approved`` (nothing is allowed);
        * ``preflight_rejected``: any other 4xx (bad key, role, unknown agent, invalid order);
        * ``client_error``: the order could not even be sent (e.g. not serialisable).

        With ``strict=True`` those raise instead (:class:`MandateUnavailable`,
        :class:`MandateError`, :class:`MandateProtocolError`, or the local exception).
        """
        try:
            body = order.to_json() if isinstance(order, Order) else dict(order)
            value = self.call(
                "POST", f"/v1/agents/{_seg(agent_id)}/preflight", body=body, timeout=timeout
            )
            return Decision.from_json(value)
        except MandateError as e:
            if strict:
                raise
            if isinstance(e, (MandateUnavailable, MandateProtocolError)) or e.retryable:
                code = UNREACHABLE
            elif e.status == 409 and e.code == "mandate-not-approved":
                code = NOT_APPROVED
            else:
                code = REJECTED
            log.warning("preflight for %s denied (fail closed, %s): %s", agent_id, code, e)
            return Decision.deny(code, str(e), e)
        except Exception as e:  # noqa: BLE001 - the trading path must get a decision
            if strict:
                raise
            log.warning("preflight for %s denied (fail closed, %s): %r", agent_id, CLIENT_ERROR, e)
            return Decision.deny(CLIENT_ERROR, f"{type(e).__name__}: {e}", e)

    def get_decision(self, decision_id: str) -> DecisionRecord:
        """``GET /v1/decisions/{id}`` (readers, or the agent's own key): a pre-trade decision
        (``Decision.decision_id`` of a preflight, ``SignedOrder.decision_id`` of a signing) with
        the order as checked, every reason with its enforcement, who asked, and the events
        that followed: those naming the decision (``decision_id``) and those of the
        checked order's ``client_order_id``. An unknown id, or another organization's (another
        agent's, for an agent key) is a 404 :class:`MandateError`."""
        return DecisionRecord.from_json(self.call("GET", f"/v1/decisions/{_seg(decision_id)}"))

    # --- events, risk, baselines, incidents ---------------------------------------------------

    def report_events(self, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> EventsAccepted:
        """``POST /v1/events``: one event or a list of 1 to 1000, stored all or none.
        For the trading loop use :class:`EventReporter`, which batches in the background and
        never raises."""
        if isinstance(events, Mapping):
            body: Any = dict(events)
        else:
            body = [dict(e) for e in events]
            if not 1 <= len(body) <= MAX_EVENTS_PER_REQUEST:
                raise ValueError(f"send 1 to {MAX_EVENTS_PER_REQUEST} events per request")
        return EventsAccepted.from_json(self.call("POST", "/v1/events", body=body))

    def usage(self, agent_id: str) -> Usage:
        """``GET /v1/agents/{id}/usage`` (readers, or the agent's own key): what the pre-trade
        check counts now beside the limits: the day's volume and realised loss, messages in
        the last second, failures in a row, and, from the order events reported, the open
        orders, the net position per market and the order-to-trade flow."""
        return Usage.from_json(self.call("GET", f"/v1/agents/{_seg(agent_id)}/usage"))

    def risk_score(self, agent_id: str) -> RiskScore:
        """``GET /v1/agents/{id}/risk-score``."""
        return RiskScore.from_json(self.call("GET", f"/v1/agents/{_seg(agent_id)}/risk-score"))

    def risk_band(self, agent_id: str, *, strict: bool = False) -> RiskBand:
        """The agent's risk band now. Fails closed: without ``strict``, any failure to get it
        answers :attr:`RiskBand.HIGH` (and is logged) instead of raising."""
        try:
            return self.risk_score(agent_id).band
        except Exception as e:  # noqa: BLE001
            if strict:
                raise
            log.warning("risk band of %s unknown, assuming high: %s", agent_id, e)
            return RiskBand.HIGH

    def baselines(self, agent_id: str) -> list[BaselineVersion]:
        """``GET /v1/agents/{id}/baseline``: the versions, newest first."""
        value = self.call("GET", f"/v1/agents/{_seg(agent_id)}/baseline")
        versions = value.get("items") if isinstance(value, dict) else None
        if not isinstance(versions, list):
            raise MandateProtocolError(title="Malformed answer", detail="baseline: no items list")
        return [BaselineVersion.from_json(v) for v in versions]

    def learn_baseline(self, agent_id: str) -> BaselineVersion:
        """``POST /v1/agents/{id}/baseline``: learn one now from the observation window."""
        return BaselineVersion.from_json(self.call("POST", f"/v1/agents/{_seg(agent_id)}/baseline"))

    def approve_baseline(self, agent_id: str, version: int | None = None) -> BaselineVersion:
        """``POST /v1/agents/{id}/baseline/approve`` (compliance, not the key that had it learnt)."""
        return BaselineVersion.from_json(
            self._decide(f"/v1/agents/{_seg(agent_id)}/baseline/approve", version, None)
        )

    def reject_baseline(self, agent_id: str, version: int | None = None) -> BaselineVersion:
        """``POST /v1/agents/{id}/baseline/reject`` (compliance)."""
        return BaselineVersion.from_json(
            self._decide(f"/v1/agents/{_seg(agent_id)}/baseline/reject", version, None)
        )

    def list_incidents(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> IncidentPage:
        """``GET /v1/incidents``: one page, newest first, optionally of one agent and one
        ``status`` (``open``, ``acknowledged``, ``resolved``)."""
        return IncidentPage.from_json(
            self.call(
                "GET",
                "/v1/incidents",
                query={"agent_id": agent_id, "status": status, "limit": limit, "cursor": cursor},
            )
        )

    def iter_incidents(
        self, agent_id: str | None = None, status: str | None = None, page_size: int = 100
    ) -> Iterator[Incident]:
        """Every incident (of the agent, with the status, if given), newest first."""
        return _walk(lambda cursor: self.list_incidents(agent_id, status, page_size, cursor))

    def get_incident(self, incident_id: int) -> Incident:
        return Incident.from_json(self.call("GET", f"/v1/incidents/{_seg(incident_id)}"))

    def acknowledge_incident(self, incident_id: int) -> Incident:
        return Incident.from_json(
            self.call("POST", f"/v1/incidents/{_seg(incident_id)}/acknowledge", body={})
        )

    def resolve_incident(self, incident_id: int, resolution: str) -> Incident:
        """The human sign-off (compliance); clears the agent's risk score."""
        return Incident.from_json(
            self.call(
                "POST", f"/v1/incidents/{_seg(incident_id)}/resolve", body={"resolution": resolution}
            )
        )

    # --- custodial signing and verification ---------------------------------------------------

    def post_reference_prices(
        self,
        prices: Mapping[str, str | int | float | Decimal] | Sequence[Mapping[str, Any]],
        organization: str | None = None,
    ) -> int:
        """``POST /v1/reference-prices`` (operator, market-data, admin): the latest prices of
        markets, which price collars are checked against. ``prices`` is ``{market: price}``
        (taken now) or a list of ``{"market", "price", "at"}``. Returns how many were accepted.
        The daemon keeps them in memory: post every few seconds, or collars fail closed. A
        price feed uses a ``market-data`` key of its organization, which may do nothing else."""
        if isinstance(prices, Mapping):
            items: list[Json] = [
                {"market": m, "price": _json_size(p)}
                for m, p in prices.items()
            ]
        else:
            items = []
            for p in prices:
                item = dict(p)
                if isinstance(item.get("price"), (float, Decimal)):
                    item["price"] = _json_size(item["price"])
                items.append(item)
        body: Json = {"prices": items}
        if organization is not None:
            body["organization"] = organization
        value = self.call("POST", "/v1/reference-prices", body=body)
        if not isinstance(value, dict) or not isinstance(value.get("accepted"), int):
            raise MandateProtocolError(title="Malformed answer", detail="reference prices: no count")
        return int(value["accepted"])

    def sign(self, agent_id: str, order: Order | Mapping[str, Any]) -> SignedOrder:
        """``POST /v1/agents/{id}/sign``: the daemon checks the order and signs it with the
        agent's HSM key. Raises :class:`OutOfMandate` (with ``.decision``) for a refused order
        (a refusal records no decision). The answer's ``decision_id`` names the decision, and
        the signed payload ends with it."""
        body = order.to_json() if isinstance(order, Order) else dict(order)
        return SignedOrder.from_json(self.call("POST", f"/v1/agents/{_seg(agent_id)}/sign", body=body))

    def verify(
        self,
        certificate: str,
        signature: str,
        payload: str,
        ocsp_response: str | None = None,
    ) -> Verification:
        """``POST /v1/verify``: what an exchange checks. ``certificate`` is the PEM leaf,
        optionally followed by its intermediates; ``signature``, ``payload`` and
        ``ocsp_response`` are base64."""
        body: Json = {"certificate": certificate, "signature": signature, "payload": payload}
        if ocsp_response is not None:
            body["ocsp_response"] = ocsp_response
        return Verification.from_json(self.call("POST", "/v1/verify", body=body))

    def verify_signed_order(self, signed: SignedOrder) -> Verification:
        """:meth:`verify` of a :class:`SignedOrder` with its chain."""
        leaf = signed.certificate_pem if signed.certificate_pem.endswith("\n") else signed.certificate_pem + "\n"
        return self.verify(leaf + signed.chain_pem, signed.signature, signed.payload)

    # --- webhooks -----------------------------------------------------------------------------

    def create_webhook(
        self,
        url: str,
        events: Sequence[str] | None = None,
        operator: str | None = None,
    ) -> Webhook:
        """``POST /v1/webhooks`` (operator, admin). ``events`` defaults to ``["*"]``; the
        answer's ``secret`` (``whsec_…``) is shown only this once: give it to the receiver."""
        body: Json = {"url": url}
        if events is not None:
            body["events"] = list(events)
        if operator is not None:
            body["operator"] = operator
        return Webhook.from_json(self.call("POST", "/v1/webhooks", body=body))

    def list_webhooks(self, limit: int | None = None, cursor: str | None = None) -> WebhookPage:
        """``GET /v1/webhooks``: one page, by id, disabled endpoints included."""
        return WebhookPage.from_json(
            self.call("GET", "/v1/webhooks", query={"limit": limit, "cursor": cursor})
        )

    def iter_webhooks(self, page_size: int = 100) -> Iterator[Webhook]:
        """Every webhook endpoint, page by page."""
        return _walk(lambda cursor: self.list_webhooks(page_size, cursor))

    def get_webhook(self, webhook_id: str) -> Webhook:
        return Webhook.from_json(self.call("GET", f"/v1/webhooks/{_seg(webhook_id)}"))

    def disable_webhook(self, webhook_id: str) -> Webhook:
        """``POST /v1/webhooks/{id}/disable``: final; pending deliveries are marked failed."""
        return Webhook.from_json(self.call("POST", f"/v1/webhooks/{_seg(webhook_id)}/disable", body={}))

    def redeliver(self, webhook_id: str, delivery_id: int) -> WebhookDelivery:
        """``POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver`` (operator, admin): a
        delivered or given-up delivery is due again at once (``status`` ``pending``)."""
        path = f"/v1/webhooks/{_seg(webhook_id)}/deliveries/{int(delivery_id)}/redeliver"
        return WebhookDelivery.from_json(self.call("POST", path, body={}))

    def webhook_deliveries(
        self, webhook_id: str, limit: int | None = None, cursor: str | None = None
    ) -> WebhookDeliveryPage:
        """``GET /v1/webhooks/{id}/deliveries``: one page, newest first."""
        return WebhookDeliveryPage.from_json(
            self.call(
                "GET",
                f"/v1/webhooks/{_seg(webhook_id)}/deliveries",
                query={"limit": limit, "cursor": cursor},
            )
        )

    def iter_webhook_deliveries(self, webhook_id: str, page_size: int = 100) -> Iterator[WebhookDelivery]:
        """Every delivery to the endpoint, newest first, page by page."""
        return _walk(lambda cursor: self.webhook_deliveries(webhook_id, page_size, cursor))
