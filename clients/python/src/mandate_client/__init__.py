"""Python client for the mandate certificate authority daemon.

* :class:`MandateClient`: the REST API (organizations, people, API keys, agents, mandates,
  certificates, kill switch, pre-trade checks, events, risk score, baselines, incidents,
  custodial signing, webhooks).
* :func:`generate_key_and_csr`: a key pair and CSR made locally; the private key stays here.
* :class:`EventReporter`: batched, non-blocking event reporting for the trading loop.
* :class:`WebhookReceiver` / :class:`WebhookListener`: verified webhook deliveries.

Fail closed: :meth:`MandateClient.preflight` returns a denial (``mandate_unreachable``, …)
instead of raising unless ``strict=True``; :meth:`EventReporter.report` never raises.
"""

from ._version import __version__
from .client import (
    CLIENT_ERROR,
    MAX_EVENTS_PER_REQUEST,
    NOT_APPROVED,
    REJECTED,
    UNREACHABLE,
    Enrollment,
    MandateClient,
)
from .errors import (
    MandateError,
    MandateProtocolError,
    MandateUnavailable,
    OutOfMandate,
    WebhookVerificationError,
)
from .events import EventReporter, ReporterStats
from .keys import KEY_TYPES, KeyAndCsr, generate_key_and_csr, save_private_key
from .models import (
    Agent,
    AgentPage,
    ApiKey,
    ApiKeyPage,
    BaselineVersion,
    Certificate,
    CertificatePage,
    Contribution,
    Decision,
    EabCredentials,
    EventsAccepted,
    Incident,
    IncidentPage,
    IncidentRef,
    IssuedCertificate,
    KillSwitch,
    Order,
    Organization,
    OrganizationPage,
    Person,
    PersonPage,
    Reason,
    RiskBand,
    RiskScore,
    ScoredEvent,
    SignedOrder,
    Verification,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookPage,
)
from .webhooks import WebhookListener, WebhookReceiver, verify_webhook

__all__ = [
    "__version__",
    "MandateClient",
    "Enrollment",
    "MAX_EVENTS_PER_REQUEST",
    "UNREACHABLE",
    "NOT_APPROVED",
    "REJECTED",
    "CLIENT_ERROR",
    "MandateError",
    "MandateUnavailable",
    "MandateProtocolError",
    "OutOfMandate",
    "WebhookVerificationError",
    "EventReporter",
    "ReporterStats",
    "KEY_TYPES",
    "KeyAndCsr",
    "generate_key_and_csr",
    "save_private_key",
    "Agent",
    "AgentPage",
    "ApiKey",
    "ApiKeyPage",
    "BaselineVersion",
    "Certificate",
    "CertificatePage",
    "Contribution",
    "Decision",
    "EabCredentials",
    "EventsAccepted",
    "Incident",
    "IncidentPage",
    "IncidentRef",
    "IssuedCertificate",
    "KillSwitch",
    "Order",
    "Organization",
    "OrganizationPage",
    "Person",
    "PersonPage",
    "Reason",
    "RiskBand",
    "RiskScore",
    "ScoredEvent",
    "SignedOrder",
    "Verification",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryPage",
    "WebhookPage",
    "WebhookListener",
    "WebhookReceiver",
    "verify_webhook",
]
