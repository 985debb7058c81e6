"""Exceptions raised by the client.

Every non-2xx answer of the daemon is an RFC 9457 problem document; it becomes a
:class:`MandateError` carrying its fields. Failures to get an answer at all (connection refused,
DNS, timeout, reset) and answers that mean "try again later" (429, 502, 503, 504) are
:class:`MandateUnavailable`. A 2xx answer whose body is not what the API documents is
:class:`MandateProtocolError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from .models import Decision

__all__ = [
    "PROBLEM_PREFIX",
    "MandateError",
    "MandateUnavailable",
    "MandateProtocolError",
    "OutOfMandate",
    "WebhookVerificationError",
    "RenewalError",
    "CertificationFailed",
    "CertificateStoreError",
]

PROBLEM_PREFIX = "urn:mandate:problem:"

_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


class MandateError(Exception):
    """An RFC 9457 problem: a non-2xx answer of the daemon (or a failure to get one).

    Attributes:
        type: the problem type URI, e.g. ``urn:mandate:problem:not-found``
            (``about:blank`` when the answer was not a problem document).
        title: the HTTP reason phrase.
        status: the HTTP status, or ``None`` when no HTTP answer came.
        detail: the human-readable explanation of this occurrence.
        instance: the problem's ``instance`` member, if any.
        extensions: every other member of the problem document
            (e.g. ``allowed`` and ``reasons`` of ``out-of-mandate``).
        request_id: the ``X-Request-Id`` of the exchange (quote it when reporting a problem).
        retry_after: seconds from a ``Retry-After`` header, if one came.
    """

    def __init__(
        self,
        *,
        type: str = "about:blank",
        title: str = "",
        status: int | None = None,
        detail: str = "",
        instance: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.extensions: dict[str, Any] = dict(extensions or {})
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no answer"
        text = f"{where} {self.code}: {self.detail or self.title}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    @property
    def code(self) -> str:
        """The problem type without the ``urn:mandate:problem:`` prefix (e.g. ``not-found``)."""
        if self.type.startswith(PROBLEM_PREFIX):
            return self.type[len(PROBLEM_PREFIX) :]
        return self.type

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later: no answer, 429 or a 5xx."""
        return self.status is None or self.status == 429 or self.status >= 500

    @classmethod
    def from_problem(
        cls,
        status: int,
        body: Mapping[str, Any] | None,
        *,
        reason: str = "",
        text: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> MandateError:
        """Builds the right subclass for an error answer (``body`` is the parsed problem, or
        ``None`` when the answer was not JSON, e.g. a proxy's HTML page)."""
        if body is not None and isinstance(body.get("type"), str):
            ptype = str(body["type"])
            title = body.get("title")
            detail = body.get("detail")
            instance = body.get("instance")
            extensions = {k: v for k, v in body.items() if k not in _STANDARD_MEMBERS}
            kwargs: dict[str, Any] = dict(
                type=ptype,
                title=title if isinstance(title, str) else reason,
                status=status,
                detail=detail if isinstance(detail, str) else "",
                instance=instance if isinstance(instance, str) else None,
                extensions=extensions,
                request_id=request_id,
                retry_after=retry_after,
            )
        else:
            kwargs = dict(
                type="about:blank",
                title=reason,
                status=status,
                detail=text.strip()[:500],
                request_id=request_id,
                retry_after=retry_after,
            )
        if status == 403 and kwargs["type"] == PROBLEM_PREFIX + "out-of-mandate":
            return OutOfMandate(**kwargs)
        if status in (429, 502, 503, 504):
            return MandateUnavailable(**kwargs)
        return MandateError(**kwargs)


class MandateUnavailable(MandateError):
    """No usable answer now: a network error or timeout (``status`` is ``None``), or a
    429/502/503/504 answer (``hsm-unavailable``, ``database-unavailable``, ``not-ready``,
    ``rate-limited``, a proxy's gateway error). Retrying later may succeed."""


class MandateProtocolError(MandateError):
    """A 2xx answer that is not what the API documents (not JSON, a missing or mistyped field)."""


class OutOfMandate(MandateError):
    """``403 out-of-mandate`` from custodial signing: the order fails the pre-trade check.

    :attr:`decision` is the check's answer carried in the problem's extension members.
    """

    @property
    def decision(self) -> Decision:
        from .models import Decision

        return Decision.from_json({"allowed": False, "reasons": self.extensions.get("reasons", [])})


class WebhookVerificationError(Exception):
    """A webhook delivery failed verification.

    ``reason`` is one of ``missing_signature``, ``bad_signature``, ``missing_timestamp``,
    ``timestamp_mismatch``, ``stale``, ``malformed_body``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class RenewalError(Exception):
    """A :class:`~mandate_client.CertificateKeeper` could not make sure a valid certificate is
    held (see the subclasses for why).

    Attributes:
        agent_id: the agent whose certificate it keeps.
        held: the certificate still held, if one is (a renewal inside its window failed, but
            it is valid until ``held.not_after``: keep using it), else ``None``.
        retryable: whether trying again later may succeed (the keeper's background thread
            retries either way, with backoff, since an agent may be approved or reinstated).
        retry_after: seconds the daemon asked to wait (``Retry-After``), if it did.
    """

    def __init__(
        self,
        message: str,
        *,
        agent_id: str,
        held: Any = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.held = held
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class CertificationFailed(RenewalError):
    """The CA did not issue the certificate (``error`` is the daemon's answer, or a
    :class:`MandateProtocolError` when what came back does not certify the key sent). The new
    key stays in the keeper's pending file and is sent again on the next attempt."""

    def __init__(self, message: str, *, error: MandateError, **kwargs: Any) -> None:
        self.error = error
        kwargs.setdefault("retryable", error.retryable)
        kwargs.setdefault("retry_after", error.retry_after)
        super().__init__(message, **kwargs)


class CertificateStoreError(RenewalError):
    """The key or certificate files could not be read or written (``error`` is the
    ``OSError``). A renewal interrupted here is completed from the files on the next attempt."""

    def __init__(self, message: str, *, error: OSError, **kwargs: Any) -> None:
        self.error = error
        super().__init__(message, **kwargs)
