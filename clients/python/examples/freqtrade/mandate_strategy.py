"""mandate for Freqtrade: a strategy mixin that puts a Freqtrade bot under a mandate.

Put :class:`MandateStrategyMixin` before ``IStrategy`` in your strategy's bases::

    from mandate_strategy import MandateStrategyMixin

    class MyStrategy(MandateStrategyMixin, IStrategy):
        ...

and add a ``"mandate"`` section to the Freqtrade configuration (see README.md beside this file).
The mixin uses Freqtrade's own callbacks (checked against freqtrade 2026.9):

* ``bot_start``: starts a :class:`~mandate_client.CertificateKeeper` on ``cert_dir`` (it uses
  the cached certificate, or makes a key here and has it certified, and from then on renews
  it by itself when the CA's renewal information says so), the webhook listener and the
  event reporter;
* ``bot_loop_start``: halts the bot for good when its certificate was revoked or the agent
  suspended (webhook, pre-trade check or a periodic status check), retries a start-up that
  could not reach the CA; a certificate retired by a newer mandate version (webhook
  ``certificate.superseded``, a ``superseded`` revocation, or the pre-trade check's
  ``no_valid_certificate``) is renewed, not a reason to halt;
* ``confirm_trade_entry`` / ``confirm_trade_exit``: the pre-trade check (``preflight``); a
  refusal is logged with its reasons and the order is not placed;
* ``custom_stake_amount``: the stake scaled by the agent's risk band (low 1.0, medium 0.5,
  high 0);
* ``order_filled``: every fill (entries, exits, stop losses) is reported as an order event
  (``filled``/``partially_filled``), once; the fill that closes an exit order (the trade's exit
  side, a stop loss included; or its ``cancelled`` event, when its fills were reported while it
  rested) carries the ``realised_pnl`` it realised, in the stake currency, as Freqtrade's own
  accounting has it (the growth of ``Trade.realized_profit``; once the trade closed, of
  ``close_profit_abs``; fees and funding fees included): the daemon's ``maxDailyLoss`` counts
  it. Entries carry none, and no P&L is reported twice;
* the order lifecycle: each entry and exit order Freqtrade places is reported ``new`` (with
  the ``decision_id`` of the pre-trade check that allowed it) when the mixin first sees it in
  Freqtrade's database (the next callback: the pre-trade check of the next order,
  ``order_filled`` or ``bot_loop_start``), and ``cancelled`` (or ``rejected``) once Freqtrade
  recorded it so; orders Freqtrade cancels unfilled after their timeout are reported as failed;
* ``should_exit``: while halted (exits refused), no exit is attempted at all, so Freqtrade does
  not cancel the stop loss on the exchange before asking ``confirm_trade_exit``;
* ``adjust_order_price`` (or ``adjust_entry_price`` / ``adjust_exit_price``, which it calls),
  when the strategy defines one (the default keeps the order): Freqtrade replaces a resting
  limit order at the new price the strategy answers (it cancels it and places a new one)
  without asking ``confirm_trade_entry``/``confirm_trade_exit``, so a new price is checked here
  as a new order (``intent`` ``new``: same pair and side, the amount Freqtrade will place, the
  new price, ``limit``); the replacement carries the allowing check's ``decision_id``. A
  refusal, a halt, an unreachable CA or an error keep the existing order (the current price is
  answered: nothing is cancelled or replaced); an exit's replacement is not checked under
  ``exit_policy`` ``allow``. ``None`` (cancel, no replacement) and the current price (keep)
  are not checked.

Fail closed: an entry is placed only when the CA allowed it; an error in this module, an
unreachable CA, a missing certificate or a halt deny it (and make the stake 0). Exits follow
``exit_policy`` (default ``"check"``: the CA's refusals block exits, an unreachable CA does
not; see the README for why). Nothing here raises into Freqtrade after ``bot_start``.

Your own overrides of these callbacks are wrapped when your class is created, so the mandate
checks run even if they do not call ``super()`` (and run once if they do).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import hashlib
import inspect
import logging
import math
import os
import threading
import time
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple

from freqtrade.enums import ExitType
from freqtrade.persistence import Order as FtOrder
from freqtrade.persistence import Trade as FtTrade
from freqtrade.strategy import IStrategy
from pandas import DataFrame
from sqlalchemy import select

from mandate_client import (
    UNREACHABLE,
    CertificateKeeper,
    Decision,
    EventReporter,
    HeldCertificate,
    MandateClient,
    MandateError,
    Order,
    OrderState,
    RenewalError,
    RiskBand,
    WebhookListener,
)

__all__ = ["MandateStrategyMixin", "MandateSampleStrategy", "MandateSettings", "market_of"]

log = logging.getLogger("mandate.freqtrade")

#: Stake multiplier per risk band (``custom_stake_amount``); ``risk_band`` answers HIGH when the
#: CA cannot be asked, so an unknown band means no new position.
BAND_SCALE: dict[RiskBand, float] = {
    RiskBand.LOW: 1.0,
    RiskBand.MEDIUM: 0.5,
    RiskBand.HIGH: 0.0,
    # No baseline approved yet: no anomaly score, but every order is still checked against the
    # mandate and a reported breach revokes. Set it lower to trade smaller until a baseline is.
    RiskBand.NOT_MONITORED: 1.0,
}

EXIT_POLICIES = ("check", "strict", "allow")

#: Webhook event types that can halt this bot.
HALT_EVENTS = ("certificate.revoked", "agent.suspended")
#: Every webhook event type the bot acts on: the halts, and ``certificate.superseded`` (a newer
#: mandate version retires the certificate: renew now). A self-registered webhook asks for these.
WEBHOOK_EVENTS = HALT_EVENTS + ("certificate.superseded",)
#: RFC 5280 reason code ``superseded`` (a ``certificate.revoked`` webhook's
#: ``revocation_reason_code``, beside the name ``revocation_reason``): a renewal, or a mandate
#: version that narrowed, retired the certificate. The daemon then answers
#: ``no_valid_certificate`` (renew), never a halt.
SUPERSEDED = 4
#: The pre-trade check's reasons about the agent's certificates.
CERTIFICATE_REVOKED = "certificate_revoked"
NO_VALID_CERTIFICATE = "no_valid_certificate"
#: Seconds between renewals made on the order path (after ``no_valid_certificate``); between
#: them the keeper's background thread is only woken, so a CA refusing to certify is not asked
#: once per order.
SYNC_RENEW_INTERVAL = 10.0
#: Seconds a pre-trade decision waits for the order it allowed to show up in Freqtrade's
#: database; after that the order was not placed (the venue refused it before it existed,
#: Freqtrade kept a similar open order, funds were short) and the decision links to nothing.
EXPECT_ORDER_SECS = 60.0
#: Closed orders remembered (their fills reported), so that Freqtrade calling ``order_filled``
#: again for one (its recovery paths do) reports nothing twice.
REMEMBERED_ORDERS = 5000
#: Freqtrade's statuses of an order that no longer rests.
_CANCELLED_STATUSES = ("canceled", "cancelled", "expired")


# --- configuration ------------------------------------------------------------------------------


def _opt_str(section: Mapping[str, Any], key: str, env: str | None = None) -> str | None:
    value = section.get(key)
    if value is None and env:
        value = os.environ.get(env)
    if value is None or value == "":
        return None
    return str(value)


def _read_secret_file(path: str, what: str) -> str:
    try:
        text = Path(path).expanduser().read_text().strip()
    except OSError as e:
        raise ValueError(f"mandate.{what}: cannot read {path}: {e}") from None
    if not text:
        raise ValueError(f"mandate.{what}: {path} is empty")
    return text


# NamedTuples, not dataclasses: Freqtrade imports strategy files without registering them in
# sys.modules, which dataclasses need.
class WebhookSettings(NamedTuple):
    host: str = "127.0.0.1"
    port: int = 8787
    path: str = "/mandate"
    public_url: str | None = None
    secret: str | None = None
    register: bool = False

    def __repr__(self) -> str:  # never the secret
        return f"WebhookSettings(host={self.host!r}, port={self.port}, path={self.path!r}, register={self.register})"


class MandateSettings(NamedTuple):
    """The ``"mandate"`` section of the Freqtrade configuration (README.md lists every key)."""

    url: str
    api_key: str
    agent_id: str
    cert_dir: Path
    organization: str | None = None
    key_type: str = "ec-p256"
    profile: str | None = None
    validity_days: int | None = None
    renew_before_days: float | None = None  # deprecated, ignored: renewal follows the CA (ARI)
    region: str | None = None
    counterparty: str | None = None
    currency: str = "EUR"
    market_map: Mapping[str, str] = {}
    timeout: float = 5.0
    check_interval: float = 60.0
    exit_policy: str = "check"
    band_scale: Mapping[RiskBand, float] = BAND_SCALE
    report_events: bool = True
    report_failures: bool = True
    webhook: WebhookSettings | None = None
    #: On a halt (kill switch, revocation), cancel every open order through Freqtrade's own
    #: timeout path (RTS 6 Art. 12: the kill function cancels what is resting).
    cancel_open_orders_on_halt: bool = True

    def __repr__(self) -> str:  # never the API key
        return f"MandateSettings(url={self.url!r}, agent_id={self.agent_id!r}, cert_dir={str(self.cert_dir)!r}, ...)"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MandateSettings:
        """Reads ``config["mandate"]``; ``url``, ``api_key`` and ``agent_id`` may come from
        ``MANDATE_URL``, ``MANDATE_API_KEY`` (or ``MANDATE_API_KEY_FILE``) and
        ``MANDATE_AGENT_ID`` instead. Raises ``ValueError`` for a missing or bad setting."""
        raw = config.get("mandate")
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ValueError('the "mandate" configuration section must be an object')
        url = _opt_str(raw, "url", "MANDATE_URL")
        agent_id = _opt_str(raw, "agent_id", "MANDATE_AGENT_ID")
        api_key = _opt_str(raw, "api_key", "MANDATE_API_KEY")
        if api_key is None:
            key_file = _opt_str(raw, "api_key_file", "MANDATE_API_KEY_FILE")
            if key_file is not None:
                api_key = _read_secret_file(key_file, "api_key_file")
        missing = [n for n, v in (("url", url), ("api_key", api_key), ("agent_id", agent_id)) if not v]
        if missing:
            raise ValueError(
                "mandate: missing " + ", ".join(missing)
                + ' (set them in config["mandate"] or MANDATE_URL / MANDATE_API_KEY / MANDATE_AGENT_ID)'
            )
        assert url and api_key and agent_id
        user_data = config.get("user_data_dir")
        default_dir = Path(user_data) / "mandate" if user_data else Path("mandate")
        exit_policy = str(raw.get("exit_policy", "check"))
        if exit_policy not in EXIT_POLICIES:
            raise ValueError(f"mandate.exit_policy must be one of {', '.join(EXIT_POLICIES)}")
        currency = _opt_str(raw, "currency") or str(config.get("stake_currency") or "")
        if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ValueError(
                f"mandate.currency: the CA takes three-letter currencies; the stake currency is "
                f"{currency!r}: set mandate.currency to the one the mandate's limits are in"
            )
        scale = dict(BAND_SCALE)
        for band, value in dict(raw.get("band_scale") or {}).items():
            factor = float(value)
            if not 0.0 <= factor <= 1.0:
                raise ValueError("mandate.band_scale factors must be between 0 and 1")
            scale[RiskBand(band)] = factor
        exchange = config.get("exchange") or {}
        counterparty = _opt_str(raw, "counterparty") or (
            str(exchange["name"]) if isinstance(exchange, Mapping) and exchange.get("name") else None
        )
        webhook = None
        hook = raw.get("webhook")
        if hook:
            if not isinstance(hook, Mapping):
                raise ValueError("mandate.webhook must be an object")
            secret = _opt_str(hook, "secret", "MANDATE_WEBHOOK_SECRET")
            if secret is None and hook.get("secret_file"):
                secret = _read_secret_file(str(hook["secret_file"]), "webhook.secret_file")
            register = bool(hook.get("register", False))
            if secret is None and not register:
                raise ValueError(
                    "mandate.webhook: give the secret the operator got when creating the webhook "
                    '(secret, secret_file or MANDATE_WEBHOOK_SECRET), or "register": true with an '
                    "operator key"
                )
            webhook = WebhookSettings(
                host=str(hook.get("host", "127.0.0.1")),
                port=int(hook.get("port", 8787)),
                path=str(hook.get("path", "/mandate")),
                public_url=_opt_str(hook, "public_url"),
                secret=secret,
                register=register,
            )
        validity = raw.get("validity_days")
        profile = _opt_str(raw, "profile")
        if profile is not None and validity is not None:
            raise ValueError("mandate: give at most one of profile and validity_days")
        renew_before = raw.get("renew_before_days")
        return cls(
            url=url,
            api_key=api_key,
            agent_id=agent_id,
            cert_dir=Path(str(raw.get("cert_dir") or default_dir)).expanduser(),
            organization=_opt_str(raw, "organization"),
            key_type=str(raw.get("key_type", "ec-p256")),
            profile=profile,
            validity_days=None if validity is None else int(validity),
            renew_before_days=None if renew_before is None else float(renew_before),
            region=_opt_str(raw, "region"),
            counterparty=counterparty,
            currency=currency,
            market_map={str(k): str(v) for k, v in dict(raw.get("market_map") or {}).items()},
            timeout=float(raw.get("timeout", 5)),
            check_interval=float(raw.get("check_interval", 60)),
            exit_policy=exit_policy,
            band_scale=scale,
            # Simulated (dry-run) fills are not executions: not reported unless asked for.
            report_events=bool(raw.get("report_events", not config.get("dry_run", False))),
            report_failures=bool(raw.get("report_failures", True)),
            webhook=webhook,
            cancel_open_orders_on_halt=bool(raw.get("cancel_open_orders_on_halt", True)),
        )


def market_of(pair: str, market_map: Mapping[str, str] | None = None) -> str:
    """The mandate's market name for a Freqtrade pair: ``market_map[pair]`` if set, else
    ``BTC/EUR`` → ``BTC_EUR`` and ``BTC/USDT:USDT`` (futures) → ``BTC_USDT_USDT``."""
    if market_map and pair in market_map:
        return market_map[pair]
    return pair.replace("/", "_").replace(":", "_").upper()


def _decimal(value: float) -> Decimal:
    """A size as the API takes it: at most 8 fractional digits."""
    try:
        d = Decimal(repr(float(value))).quantize(Decimal("0.00000001"))
    except (InvalidOperation, ValueError, TypeError):
        return Decimal(0)
    return Decimal(format(d, "f").rstrip("0").rstrip("."))  # 400, not 4E+2 or 400.00000000


def _dq(value: Decimal) -> Decimal:
    """A Decimal as the API takes it (8 fractional digits at most, no exponent)."""
    d = value.quantize(Decimal("0.00000001"))
    return Decimal(format(d, "f").rstrip("0").rstrip(".") or "0")


def api_order_type(order_type: str | None) -> str | None:
    """The API's order type for a Freqtrade (ccxt) one: ``limit``, ``market``, and the stop
    loss types of the exchanges (``stop_loss_limit`` → ``stop_limit``, ``stop_market`` →
    ``stop``); ``None`` for anything else."""
    t = (order_type or "").lower()
    if "stop" in t:
        return "stop_limit" if "limit" in t else "stop"
    return t if t in ("limit", "market") else None


def client_order_id_of(order_id: str) -> str:
    """The ``client_order_id`` the daemon gets for a Freqtrade order: its ``order_id`` (the
    exchange's id, so the venue's records and the daemon's match), or, when that is not an id
    the API takes (1-64 bytes, no spaces or control characters; a dry-run id of a long pair),
    ``ft-`` and the first 32 hex digits of its SHA-256, stable across restarts."""
    raw = order_id.encode("utf-8", "replace")
    if 1 <= len(raw) <= 64 and not any(c.isspace() or not c.isprintable() for c in order_id):
        return order_id
    return "ft-" + hashlib.sha256(raw).hexdigest()[:32]


def _num(value: Any) -> float:
    """A Freqtrade amount or price (``None`` on an order not yet updated) as a float."""
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _pnl(value: Any) -> Decimal | None:
    """A profit or loss of Freqtrade's (a float) as the API takes it: signed, at most 8
    fractional digits; ``None`` for anything that is not a finite number."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    d = _decimal(f)
    return d if d else Decimal(0)  # never -0


def _realised_of(trade: Any) -> Decimal | None:
    """What Freqtrade's accounting has realised of ``trade`` so far, in its stake currency: the
    profit of the exit orders that closed (``realized_profit``, recalculated from the trade's
    orders whenever one closes), and once the trade closed its whole profit (``close_profit_abs``,
    the sum over its exits, which is also right where ``realized_profit`` is left stale: a net
    of exactly 0). Fees and funding fees are part of both. ``None`` when it cannot be read."""
    if getattr(trade, "is_open", None) is False:
        total = _pnl(getattr(trade, "close_profit_abs", None))
        if total is not None:
            return total
    return _pnl(getattr(trade, "realized_profit", None) or 0.0)


def _trade_key(trade: Any) -> tuple[str, int]:
    """``trade`` in the mixin's P&L ledger: its id in Freqtrade's database."""
    trade_id = getattr(trade, "id", None)
    return ("id", int(trade_id)) if trade_id is not None else ("object", id(trade))


def _placed_at(o: Any) -> dt.datetime:
    """When Freqtrade placed order ``o`` (now, for one not saved yet)."""
    at = getattr(o, "order_date", None)
    if isinstance(at, dt.datetime):
        return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def _filled_at(o: Any, default: dt.datetime) -> dt.datetime:
    at = getattr(o, "order_filled_date", None)
    if isinstance(at, dt.datetime):
        return at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)
    return default


class _Expected(NamedTuple):
    """An order a pre-trade check allowed that Freqtrade is about to place."""

    decision_id: str
    amount: float | None  # None: match any amount (position adjustments size it themselves)
    at: dt.datetime


class _Realised(NamedTuple):
    """The P&L an exit order's close realised, and the trade's in the P&L ledger once reported."""

    key: tuple[str, int]  # the trade's (_trade_key)
    total: Decimal  # realised of the trade, this order included (_realised_of)
    pnl: Decimal  # of that, not reported yet: what this order realised
    closed: bool  # the trade is closed


class _TrackedOrder:
    """What the mixin reported of one Freqtrade order (by its ``order_id``)."""

    __slots__ = ("order_id", "client_order_id", "pair", "side", "decision_id", "announced", "filled",
                 "failed", "closed")

    def __init__(self, order_id: str, pair: str, side: str, decision_id: str | None, announced: bool) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id_of(order_id)
        self.pair = pair
        self.side = side
        self.decision_id = decision_id
        self.announced = announced  # reported "new" (or known to the daemon from a run before)
        self.filled = Decimal(0)  # reported as filled so far
        self.failed = False  # cancelled after its timeout with nothing filled: a failure
        self.closed = False  # nothing of it rests any more, and that was reported


def _reasons(decision: Decision) -> str:
    out = []
    for r in decision.reasons:
        text = r.code
        if r.limit is not None or r.requested is not None:
            text += f" (limit {r.limit}, requested {r.requested})"
        elif r.detail:
            text += f" ({r.detail})"
        out.append(text)
    return "; ".join(out) or "no reason given"


# --- wrapping the user's overrides --------------------------------------------------------------

#: Callbacks whose overrides in a subclass are wrapped so the mandate part always runs.
_WRAPPED = (
    "bot_start",
    "bot_loop_start",
    "confirm_trade_entry",
    "confirm_trade_exit",
    "custom_stake_amount",
    "order_filled",
    "adjust_trade_position",
    "adjust_order_price",
    "adjust_entry_price",
    "adjust_exit_price",
)

#: The price callbacks of resting limit orders. The mixin defines none of them itself: Freqtrade
#: refuses a strategy that overrides ``adjust_order_price`` and one of the other two, and the
#: default keeps the order. The strategy's own are wrapped, wherever in its bases they are.
_REPRICE = ("adjust_order_price", "adjust_entry_price", "adjust_exit_price")

#: Callbacks that share one mandate part: Freqtrade calls ``adjust_order_price``, which calls
#: ``adjust_entry_price`` or ``adjust_exit_price``; a replacement is checked once, by the outermost.
_SAME_PART: dict[str, str] = {"adjust_entry_price": "adjust_order_price", "adjust_exit_price": "adjust_order_price"}

#: What the callbacks that decide on new positions answer when something fails.
_FAIL_CLOSED: dict[str, Any] = {"confirm_trade_entry": False, "custom_stake_amount": 0.0, "adjust_trade_position": None}

_active = threading.local()


@contextlib.contextmanager
def _running(obj: object, name: str) -> Iterator[bool]:
    """Marks ``name`` as running for ``obj`` in this thread; yields whether it already was
    (then the mandate part has run or is running: a ``super()`` call must pass through)."""
    running: set[tuple[int, str]] = getattr(_active, "calls", None) or set()
    _active.calls = running
    key = (id(obj), name)
    if key in running:
        yield True
        return
    running.add(key)
    try:
        yield False
    finally:
        running.discard(key)


@functools.lru_cache(maxsize=None)
def _signature(name: str) -> inspect.Signature:
    return inspect.signature(getattr(IStrategy, name))


def _bind(name: str, self: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The callback's arguments by name (Freqtrade passes keywords; users may not)."""
    try:
        bound = _signature(name).bind_partial(self, *args, **kwargs)
    except TypeError:  # an older or unusual call: take what was passed by name
        return dict(kwargs)
    values = dict(bound.arguments)
    values.update(values.pop("kwargs", {}) or {})
    values.pop("self", None)
    return values


def _wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: MandateStrategyMixin, *args: Any, **kwargs: Any) -> Any:
        with _running(self, _SAME_PART.get(name, name)) as nested:
            if nested:
                return fn(self, *args, **kwargs)
            return self._mandate_around(name, lambda: fn(self, *args, **kwargs), args, kwargs)

    wrapper._mandate_wrapped = True  # type: ignore[attr-defined]
    return wrapper


# --- the mixin ----------------------------------------------------------------------------------


class MandateStrategyMixin:
    """Puts a Freqtrade strategy under a mandate; use as ``class S(MandateStrategyMixin, IStrategy)``.

    State you may read: :attr:`mandate_halted`, :attr:`mandate_halt_reason`,
    :attr:`mandate_ready` (a valid certificate is held), :attr:`mandate_serial`,
    :attr:`mandate_client`, :attr:`mandate_keeper`, :attr:`mandate_reporter`,
    :attr:`mandate_listener`.
    """

    config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _WRAPPED:
            fn = cls.__dict__.get(name)
            if fn is None and name in _REPRICE and getattr(cls, name, None) is not getattr(IStrategy, name, None):
                fn = getattr(cls, name)  # from a base class after the mixin in the MRO
            if callable(fn) and not getattr(fn, "_mandate_wrapped", False):
                setattr(cls, name, _wrap(name, fn))

    def __init__(self, config: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]
        self.mandate_settings: MandateSettings | None = None
        self.mandate_client: MandateClient | None = None
        self.mandate_reporter: EventReporter | None = None
        self.mandate_listener: WebhookListener | None = None
        self.mandate_keeper: CertificateKeeper | None = None
        self.mandate_serial: str | None = None
        self.mandate_not_after: dt.datetime | None = None
        self.mandate_halt_reason: str | None = None
        self._mandate_halt = threading.Event()
        self._mandate_lock = threading.Lock()
        self._mandate_last_check = float("-inf")
        self._mandate_last_halt_log = float("-inf")
        self._mandate_last_sync_renew = float("-inf")
        self._mandate_webhook_id: str | None = None
        # The order lifecycle (see _mandate_sync_orders): Freqtrade's orders by order_id, the
        # pre-trade decisions waiting for their order, and the orders closed before this run.
        self._mandate_orders_lock = threading.RLock()
        self._mandate_tracked: collections.OrderedDict[str, _TrackedOrder] = collections.OrderedDict()
        self._mandate_expected: dict[tuple[str, str], _Expected] = {}
        self._mandate_closed_before: set[str] = set()
        self._mandate_no_database_logged = False
        self._mandate_halt_exit_logged: set[tuple[Any, str]] = set()
        # The realised P&L reported per trade (its _realised_of then; see _mandate_realised),
        # and whether the trade was closed.
        self._mandate_pnl: collections.OrderedDict[tuple[str, int], tuple[Decimal, bool]] = collections.OrderedDict()
        self._mandate_pnl_currency_logged = False

    # --- state ----------------------------------------------------------------------------------

    @property
    def mandate_halted(self) -> bool:
        """True once the certificate was revoked or the agent suspended: no new entries until
        the bot is restarted (see README, "Halt")."""
        return self._mandate_halt.is_set()

    @property
    def mandate_ready(self) -> bool:
        """True while an unexpired certificate is held."""
        na = self.mandate_not_after
        return self.mandate_serial is not None and na is not None and na > dt.datetime.now(dt.timezone.utc)

    @property
    def mandate_active(self) -> bool:
        """The mixin acts in live and dry-run trading (and when no run mode is set, as in
        tests); in backtesting, hyperopt and the other modes it stays out of the way: no
        CA calls, no events for simulated history."""
        mode = self.config.get("runmode")
        return mode is None or getattr(mode, "value", mode) in ("live", "dry_run")

    @property
    def mandate_agent_id(self) -> str | None:
        return self.mandate_settings.agent_id if self.mandate_settings else None

    def mandate_decision_id(self, order_id: str) -> str | None:
        """The ``decision_id`` of the pre-trade check that allowed Freqtrade's order
        ``order_id`` (``GET /v1/decisions/{id}`` shows it with the order's events); ``None``
        when the order was placed without one (a stop loss, an exit replaced under ``exit_policy``
        ``allow``) or is unknown."""
        with self._mandate_orders_lock:
            t = self._mandate_tracked.get(order_id)
            return t.decision_id if t is not None else None

    def mandate_halt(self, reason: str) -> None:
        """Stops new entries for the rest of this process's life and says so loudly."""
        with self._mandate_lock:
            if self._mandate_halt.is_set():
                return
            self.mandate_halt_reason = reason
            self._mandate_halt.set()
        keeper = self.mandate_keeper
        if keeper is not None:  # a halted bot asks for no certificates
            keeper.stop(timeout=0)
        log.critical(
            "MANDATE HALT for agent %s: %s. No new trades will be entered; exits follow "
            "exit_policy=%s. Restart the bot after compliance has reinstated the agent.",
            self.mandate_agent_id, reason,
            self.mandate_settings.exit_policy if self.mandate_settings else "check",
        )

    # --- the callbacks --------------------------------------------------------------------------

    def bot_start(self, **kwargs: Any) -> None:
        self._mandate_dispatch("bot_start", super().bot_start, (), kwargs)  # type: ignore[misc]

    def bot_loop_start(self, current_time: dt.datetime, **kwargs: Any) -> None:
        self._mandate_dispatch(
            "bot_loop_start", super().bot_loop_start, (), {"current_time": current_time, **kwargs}  # type: ignore[misc]
        )

    def confirm_trade_entry(
        self,
        pair: str,
        order_type: str,
        amount: float,
        rate: float,
        time_in_force: str,
        current_time: dt.datetime,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> bool:
        kw = dict(pair=pair, order_type=order_type, amount=amount, rate=rate, time_in_force=time_in_force,
                  current_time=current_time, entry_tag=entry_tag, side=side, **kwargs)
        return bool(self._mandate_dispatch("confirm_trade_entry", super().confirm_trade_entry, (), kw))  # type: ignore[misc]

    def confirm_trade_exit(
        self,
        pair: str,
        trade: Any,
        order_type: str,
        amount: float,
        rate: float,
        time_in_force: str,
        exit_reason: str,
        current_time: dt.datetime,
        **kwargs: Any,
    ) -> bool:
        kw = dict(pair=pair, trade=trade, order_type=order_type, amount=amount, rate=rate,
                  time_in_force=time_in_force, exit_reason=exit_reason, current_time=current_time, **kwargs)
        return bool(self._mandate_dispatch("confirm_trade_exit", super().confirm_trade_exit, (), kw))  # type: ignore[misc]

    def custom_stake_amount(
        self,
        pair: str,
        current_time: dt.datetime,
        current_rate: float,
        proposed_stake: float,
        min_stake: float | None,
        max_stake: float,
        leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        kw = dict(pair=pair, current_time=current_time, current_rate=current_rate, proposed_stake=proposed_stake,
                  min_stake=min_stake, max_stake=max_stake, leverage=leverage, entry_tag=entry_tag, side=side,
                  **kwargs)
        return float(self._mandate_dispatch("custom_stake_amount", super().custom_stake_amount, (), kw))  # type: ignore[misc]

    def order_filled(self, pair: str, trade: Any, order: Any, current_time: dt.datetime, **kwargs: Any) -> None:
        kw = dict(pair=pair, trade=trade, order=order, current_time=current_time, **kwargs)
        self._mandate_dispatch("order_filled", super().order_filled, (), kw)  # type: ignore[misc]

    def ft_check_timed_out(self, trade: Any, order: Any, current_time: dt.datetime) -> bool:
        """Freqtrade's (internal) decision to cancel an open order after its timeout; an order
        cancelled with nothing filled is reported as a failed execution."""
        s = self.mandate_settings
        if self.mandate_halted and s is not None and s.cancel_open_orders_on_halt:
            # Halted: every open order is cancelled on Freqtrade's next loop, through its own
            # cancellation path (no failed execution is reported for these; the cancellation
            # is, once Freqtrade recorded it).
            log.warning("mandate: cancelling open %s order of %s: agent halted (%s)",
                        getattr(order, "side", "?"), getattr(trade, "pair", "?"), self.mandate_halt_reason)
            return True
        timed_out = bool(super().ft_check_timed_out(trade, order, current_time))  # type: ignore[misc]
        if timed_out and self.mandate_active:
            try:
                self._mandate_on_timeout(trade, order, current_time)
            except Exception:  # noqa: BLE001 - never raise into Freqtrade
                log.exception("mandate: reporting a timed-out order failed")
        return timed_out

    def should_exit(self, trade: Any, rate: float, current_time: dt.datetime, **kwargs: Any) -> list[Any]:
        """Freqtrade's (internal) search for exit reasons. While the mixin is halted it would
        refuse every exit (``exit_policy`` ``check`` or ``strict``), and Freqtrade cancels a
        stop loss on the exchange *before* it asks ``confirm_trade_exit``, then places it again
        on the next loop: a halted bot would send a stop loss and its cancellation to the venue
        every few seconds. So while halted no exit is proposed at all (a liquidation aside,
        which Freqtrade places without asking), and the stop loss on the exchange stays in
        place, protecting the position, as README.md ("Halt") says."""
        exits: list[Any] = super().should_exit(trade, rate, current_time, **kwargs)  # type: ignore[misc]
        try:
            s = self.mandate_settings
            if not exits or not self.mandate_halted or not self.mandate_active:
                return exits
            if s is not None and s.exit_policy == "allow":
                return exits
            kept = [e for e in exits if getattr(e, "exit_type", None) == ExitType.LIQUIDATION]
            for e in exits:
                if e in kept:
                    continue
                reason = str(getattr(e, "exit_reason", "") or getattr(getattr(e, "exit_type", None), "value", "?"))
                key = (getattr(trade, "id", None) or getattr(trade, "pair", None), reason)
                if key not in self._mandate_halt_exit_logged:  # once per trade and reason
                    self._mandate_halt_exit_logged.add(key)
                    log.error("mandate: halted (%s): not exiting %s (%s); exits are refused while halted, "
                              "the stop loss on the exchange stays in place", self.mandate_halt_reason,
                              getattr(trade, "pair", "?"), reason)
            return kept
        except Exception:  # noqa: BLE001 - never raise into Freqtrade
            log.exception("mandate: should_exit failed; leaving Freqtrade's exits as they are")
            return exits

    def ft_bot_cleanup(self) -> None:
        """Freqtrade's shutdown hook: stops the listener, disables a webhook this bot
        registered itself, and sends the events still queued."""
        try:
            self.mandate_stop()
        finally:
            super().ft_bot_cleanup()  # type: ignore[misc]

    # --- dispatch -------------------------------------------------------------------------------

    def _mandate_dispatch(
        self, name: str, parent: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with _running(self, _SAME_PART.get(name, name)) as nested:
            if nested:  # a wrapped override called super(): the mandate part runs once
                return parent(*args, **kwargs)
            return self._mandate_around(name, lambda: parent(*args, **kwargs), args, kwargs)

    def _mandate_around(
        self, name: str, call: Callable[[], Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The mandate part of callback ``name`` around the strategy's own (``call``)."""
        if name not in _FAIL_CLOSED:
            return self._mandate_around_inner(name, call, args, kwargs)
        try:
            return self._mandate_around_inner(name, call, args, kwargs)
        except Exception:  # noqa: BLE001 - Freqtrade would confirm, or take the full stake
            log.exception("mandate: %s failed; answering %r (fail closed)", name, _FAIL_CLOSED[name])
            return _FAIL_CLOSED[name]

    def _mandate_around_inner(
        self, name: str, call: Callable[[], Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not self.mandate_active:
            return call()
        a = _bind(name, self, args, kwargs)
        if name == "bot_start":
            self.mandate_start()
            return call()
        if name == "bot_loop_start":
            self._mandate_loop(a.get("current_time"))
            return call()
        if name == "confirm_trade_entry":
            if not self._mandate_confirm_entry(a):
                return False
            try:
                ok = bool(call())
            except Exception:  # noqa: BLE001 - Freqtrade would confirm on an exception
                log.exception("mandate: the strategy's confirm_trade_entry raised; entry denied")
                ok = False
            if not ok:  # no order comes of the decision
                self._mandate_unexpect(str(a.get("pair")), "sell" if a.get("side") == "short" else "buy")
            return ok
        if name == "confirm_trade_exit":
            if not self._mandate_confirm_exit(a):
                return False
            ok = bool(call())  # an exception: Freqtrade exits all the same
            if not ok:
                trade = a.get("trade")
                self._mandate_unexpect(str(a.get("pair")), "buy" if getattr(trade, "is_short", False) else "sell")
            return ok
        if name == "custom_stake_amount":
            try:
                stake = call()
            except Exception:  # noqa: BLE001 - Freqtrade would fall back to the full stake
                log.exception("mandate: the strategy's custom_stake_amount raised; stake 0")
                return 0.0
            return self._mandate_stake(stake, a)
        if name == "order_filled":
            try:
                return call()
            finally:
                self._mandate_on_order_filled(a)
        if name == "adjust_trade_position":
            return self._mandate_adjust(call(), a)
        if name in ("adjust_order_price", "adjust_entry_price", "adjust_exit_price"):
            is_entry = bool(a.get("is_entry")) if name == "adjust_order_price" else name == "adjust_entry_price"
            return self._mandate_reprice(call(), a, is_entry)
        return call()

    # --- start, loop, stop ----------------------------------------------------------------------

    def mandate_start(self) -> None:
        """What ``bot_start`` does. A bad configuration raises (Freqtrade refuses to start); a
        CA that cannot be reached or refuses only logs: the bot starts without a certificate,
        enters nothing, and retries from ``bot_loop_start``."""
        s = MandateSettings.from_config(self.config)
        self.mandate_settings = s
        if s.renew_before_days is not None:
            log.warning("mandate.renew_before_days is deprecated and ignored: the certificate is renewed "
                        "when the CA's renewal information says (two thirds into its lifetime); remove it")
        self.mandate_client = MandateClient(s.url, s.api_key, timeout=s.timeout,
                                            user_agent="mandate-freqtrade")
        key_path, cert_path = self._mandate_paths()
        # Renewals revoke the certificate they replace (superseded): its key is gone from disk.
        self.mandate_keeper = CertificateKeeper(
            self.mandate_client, s.agent_id, key_path, cert_path, key_type=s.key_type,
            profile=s.profile, validity_days=s.validity_days, revoke_replaced=True,
            on_renewed=self._mandate_on_renewed,
        )
        if s.report_events:
            self.mandate_reporter = EventReporter(self.mandate_client, agent_id=s.agent_id)
            self._mandate_note_orders_at_start()
        if s.webhook is not None:
            self._mandate_start_listener(s.webhook)
        self._mandate_last_check = time.monotonic()
        self._mandate_setup()

    def mandate_stop(self) -> None:
        """Stops the certificate keeper and the listener, disables a self-registered webhook,
        flushes the reporter."""
        keeper = self.mandate_keeper
        if keeper is not None:
            with contextlib.suppress(Exception):
                keeper.stop(timeout=5)
        listener, self.mandate_listener = self.mandate_listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.stop()
        hook, self._mandate_webhook_id = self._mandate_webhook_id, None
        if hook is not None and self.mandate_client is not None:
            try:
                self.mandate_client.disable_webhook(hook)
            except Exception as e:  # noqa: BLE001
                log.warning("mandate: could not disable webhook %s: %s", hook, e)
        with contextlib.suppress(Exception):  # what Freqtrade cancelled at shutdown
            self._mandate_sync_orders()
        reporter, self.mandate_reporter = self.mandate_reporter, None
        if reporter is not None:
            with contextlib.suppress(Exception):
                reporter.close(timeout=5)

    def _mandate_start_listener(self, w: WebhookSettings) -> None:
        s = self.mandate_settings
        assert s is not None and self.mandate_client is not None
        listener = WebhookListener(w.host, w.port, w.secret or "", self._mandate_on_webhook, path=w.path)
        listener.start()
        self.mandate_listener = listener
        url = w.public_url or listener.url
        log.info("mandate: webhook listener on %s (public URL %s)", listener.url, url)
        if w.secret is None:  # register: needs an operator (or admin) key
            try:
                org = s.organization or self.mandate_client.get_agent(s.agent_id).organization
                hook = self.mandate_client.create_webhook(url, list(WEBHOOK_EVENTS), operator=org)
            except Exception as e:
                listener.stop()
                self.mandate_listener = None
                if isinstance(e, MandateError) and e.retryable:  # the CA is down: the status check remains
                    log.error("mandate: could not register the webhook (%s); relying on the status check", e)
                    return
                raise  # a wrong key or role: a configuration error
            assert hook.secret is not None
            listener.secret = hook.secret
            self._mandate_webhook_id = hook.id
            log.info("mandate: registered webhook %s for %s", hook.id, org)

    def _mandate_on_webhook(self, event: dict[str, Any]) -> None:
        """Runs in the listener's thread for each verified delivery."""
        data = event.get("data") or {}
        s = self.mandate_settings
        etype = event.get("type")
        if s is None or etype not in WEBHOOK_EVENTS or data.get("agent_id") != s.agent_id:
            return
        serial = data.get("serial_number")
        if etype == "agent.suspended":
            self.mandate_halt(f"webhook agent.suspended ({data.get('reason')}, by {data.get('by')})")
        elif etype == "certificate.superseded":
            # A newer, wider mandate version was approved: this certificate retires after the
            # CA's grace period; a renewal now carries the new version.
            self._mandate_renew_soon(str(serial), f"webhook certificate.superseded (mandate version "
                                                  f"{data.get('mandate_version')}, retires {data.get('retire_at')})")
        elif self.mandate_serial is not None and serial == self.mandate_serial:
            if data.get("revocation_reason_code") == SUPERSEDED:  # a narrower mandate version: renew, not halt
                self._mandate_renew_soon(str(serial), "webhook certificate.revoked as superseded")
            else:
                self.mandate_halt(
                    f"webhook certificate.revoked for {serial} "
                    f"({data.get('revocation_reason')}, by {data.get('revoked_by')})"
                )
        else:
            log.info("mandate: an older certificate of %s was revoked (%s)", s.agent_id, serial)

    def _mandate_renew_soon(self, serial: str, why: str) -> None:
        """Has the keeper's background thread renew certificate ``serial`` now (if it is still
        the one held; an older one is already replaced). Never blocks."""
        keeper = self.mandate_keeper
        if keeper is None or self.mandate_halted:
            return
        log.info("mandate: renewing certificate %s of %s: %s", serial, self.mandate_agent_id, why)
        keeper.renew_now(serial, why)

    def _mandate_on_renewed(self, held: HeldCertificate) -> None:
        """The keeper's callback, before it revokes the certificate it replaced: from here on
        that one's revocation is an older certificate's, not a reason to halt."""
        self._mandate_adopt(held)
        log.info("mandate: certified %s: serial %s, valid until %s%s, saved to %s",
                 self.mandate_agent_id, held.serial_number, held.not_after.isoformat(),
                 f" (profile {held.profile})" if held.profile else "", self._mandate_paths()[1])

    def _mandate_adopt(self, held: HeldCertificate) -> None:
        self.mandate_not_after = held.not_after
        self.mandate_serial = held.serial_number

    def _mandate_setup(self) -> bool:
        """Makes sure a valid certificate is held and the keeper runs; ``False`` (logged) when
        that failed."""
        s, client, keeper = self.mandate_settings, self.mandate_client, self.mandate_keeper
        assert s is not None and client is not None and keeper is not None
        try:
            agent = client.get_agent(s.agent_id)
            if agent.status == "suspended":
                self.mandate_halt(f"agent {s.agent_id} is suspended (kill switch)")
                return False
            if agent.status != "active":
                log.error("mandate: agent %s is %s; it needs an approved mandate before it may trade",
                          s.agent_id, agent.status)
                return False
            renewals = keeper.renewals
            # The cached certificate, unless it is missing, expired, not this agent's or key's,
            # or due for renewal (ARI; a revoked one's window is past): then a new key and one.
            held = keeper.ensure()
            cert = client.get_certificate(held.serial_number)
            if cert.revoked:  # ARI could not say so (unreachable): the CA's record does
                log.warning("mandate: the cached certificate %s is revoked (%s); certifying a new key",
                            held.serial_number, cert.revocation_reason)
                held = keeper.ensure(force=True)
        except (MandateError, RenewalError) as e:
            log.error("mandate: no certificate for %s yet (%s); entries are refused until one is held", s.agent_id, e)
            return False
        self._mandate_adopt(held)
        if keeper.renewals == renewals:
            log.info("mandate: using cached certificate %s of %s (valid until %s)",
                     held.serial_number, s.agent_id, held.not_after.isoformat())
        keeper.start()
        return True

    def _mandate_paths(self) -> tuple[Path, Path]:
        s = self.mandate_settings
        assert s is not None
        return s.cert_dir / f"{s.agent_id}.key", s.cert_dir / f"{s.agent_id}.crt"

    def _mandate_loop(self, current_time: Any) -> None:
        try:
            s = self.mandate_settings
            if s is None or self.mandate_client is None:
                return
            # Before Freqtrade handles its open orders in this loop: what was placed, filled in
            # part, cancelled or deleted since the last look (halted too: the cancellations).
            self._mandate_sync_orders()
            now = time.monotonic()
            if self.mandate_halted:
                if now - self._mandate_last_halt_log >= max(s.check_interval, 10.0):
                    self._mandate_last_halt_log = now
                    log.error("MANDATE HALTED (%s): entering no trades", self.mandate_halt_reason)
                return
            interval = s.check_interval if self.mandate_ready else min(s.check_interval, 30.0)
            if now - self._mandate_last_check < interval:
                return
            self._mandate_last_check = now
            if self.mandate_serial is None:
                self._mandate_setup()
            else:
                self._mandate_check()
        except Exception:  # noqa: BLE001
            log.exception("mandate: bot_loop_start failed")

    def _mandate_check(self) -> None:
        """The periodic status check: agent suspended or our certificate revoked halts (revoked
        as superseded renews instead); a keeper thread that died is restarted. Renewal itself is
        the keeper's. An unreachable CA only logs (the pre-trade check fails closed on its own)."""
        s, client, keeper = self.mandate_settings, self.mandate_client, self.mandate_keeper
        assert s is not None and client is not None and keeper is not None
        serial = self.mandate_serial
        assert serial is not None
        try:
            if client.get_agent(s.agent_id).status == "suspended":
                self.mandate_halt(f"agent {s.agent_id} is suspended (status check)")
                return
            cert = client.get_certificate(serial)
            if cert.revoked and serial == self.mandate_serial:  # else renewed meanwhile: fine
                if cert.revocation_reason == "superseded":
                    self._mandate_renew_soon(serial, "status check: revoked as superseded")
                else:
                    self.mandate_halt(f"certificate {serial} revoked ({cert.revocation_reason}, status check)")
                return
        except MandateError as e:
            log.warning("mandate: status check failed (%s)", e)
        if not keeper.running and not self.mandate_halted:
            log.warning("mandate: the certificate keeper was not running; starting it")
            keeper.start()

    # --- orders ---------------------------------------------------------------------------------

    def _mandate_order(self, pair: str, side: str, amount: float, rate: float, at: Any,
                       order_type: str | None = None) -> Order:
        """The order at ``at`` (a reported event's time). Pre-trade checks pass ``None``: the
        daemon decides them at its own clock, and a ``timestamp`` further than its
        ``policy.max_clock_skew_secs`` from it would get a what-if answer, no permission.
        ``quantity`` (the amount, in the base currency) and ``order_type`` are what the
        version-2 controls judge (``maxOrderQuantity``, ``allowedOrderTypes``, the net
        position); ``price`` is sent for priced orders only (a market order's rate is an
        estimate, not a limit a price collar could judge)."""
        s = self.mandate_settings
        assert s is not None
        ts = at if isinstance(at, dt.datetime) and at.tzinfo is not None else None
        kind = api_order_type(order_type)
        quantity = _decimal(float(amount))
        return Order(
            action="trade_execution",
            market=market_of(pair, s.market_map),
            counterparty=s.counterparty,
            region=s.region,
            size=_decimal(float(amount) * float(rate)),
            currency=s.currency,
            side=side,
            timestamp=ts,
            quantity=quantity if quantity > 0 else None,
            price=_decimal(float(rate)) if kind in ("limit", "stop_limit") and float(rate) > 0 else None,
            order_type=kind,
        )

    def _mandate_confirm_entry(self, a: Mapping[str, Any], exact: bool = True) -> bool:
        """The pre-trade check of an entry; an allowed one waits for its order (``exact``: of
        this very amount, as Freqtrade places what it confirmed)."""
        pair = str(a.get("pair"))
        try:
            s, client = self.mandate_settings, self.mandate_client
            if s is None or client is None:
                log.warning("mandate denied entry %s: bot_start has not run", pair)
                return False
            if self.mandate_halted:
                log.warning("mandate denied entry %s: halted (%s)", pair, self.mandate_halt_reason)
                return False
            if not self.mandate_ready:
                log.warning("mandate denied entry %s: no valid certificate held", pair)
                return False
            side = "sell" if a.get("side") == "short" else "buy"
            order = self._mandate_order(pair, side, a["amount"], a["rate"], None, a.get("order_type"))
            self._mandate_sync_orders()  # orders placed since the last check are reported first
            decision = self._mandate_preflight(order)
            allowed = self._mandate_decide("entry", pair, order, decision)
            if allowed:
                self._mandate_expect(pair, side, float(a["amount"]) if exact else None, decision)
            return allowed
        except Exception:  # noqa: BLE001 - Freqtrade would confirm on an exception
            log.exception("mandate denied entry %s: unexpected error (fail closed)", pair)
            return False

    def _mandate_preflight(self, order: Order) -> Decision:
        """The pre-trade check. ``no_valid_certificate`` (without ``certificate_revoked``) means
        the CA sees no valid certificate of the agent: it expired, or a narrower mandate version
        revoked it as superseded. That is a reason to renew, not to halt: renew now (at most
        every ``SYNC_RENEW_INTERVAL`` s on the order path; else the keeper's thread is woken)
        and ask once more."""
        s, client, keeper = self.mandate_settings, self.mandate_client, self.mandate_keeper
        assert s is not None and client is not None
        serial = self.mandate_serial
        decision = client.preflight(s.agent_id, order)
        codes = decision.codes
        if decision.allowed or NO_VALID_CERTIFICATE not in codes or CERTIFICATE_REVOKED in codes:
            return decision
        if keeper is None or self.mandate_halted:
            return decision
        now = time.monotonic()
        why = "the pre-trade check answered no_valid_certificate"
        if now - self._mandate_last_sync_renew < SYNC_RENEW_INTERVAL:
            keeper.renew_now(serial, why)
            return decision
        self._mandate_last_sync_renew = now
        log.warning("mandate: %s for %s (certificate %s); renewing now", why, s.agent_id, serial)
        try:
            if serial is not None:
                keeper.renew_now(serial, why)  # False: the keeper renewed it meanwhile
            held = keeper.ensure()
        except RenewalError as e:
            log.error("mandate: renewal after no_valid_certificate failed: %s", e)
            return decision
        self._mandate_adopt(held)
        return client.preflight(s.agent_id, order)

    def _mandate_decide(self, what: str, pair: str, order: Order, decision: Decision) -> bool:
        if decision.allowed and decision.hypothetical:
            log.warning("mandate denied %s %s: the answer was a what-if for another time", what, pair)
            return False
        if decision.allowed:
            log.info("mandate allowed %s %s: %s %s %s (decision %s)", what, pair, order.side, order.size,
                     order.currency, decision.decision_id)
            return True
        log.warning("mandate denied %s %s (%s %s %s%s): %s", what, pair, order.side, order.size, order.currency,
                    ", fail closed" if decision.fail_closed else "", _reasons(decision))
        if CERTIFICATE_REVOKED in decision.codes:
            self.mandate_halt("pre-trade check answered certificate_revoked")
        return False

    def _mandate_confirm_exit(self, a: Mapping[str, Any], exact: bool = True) -> bool:
        pair = str(a.get("pair"))
        s, client = self.mandate_settings, self.mandate_client
        policy = s.exit_policy if s is not None else "check"
        try:
            if policy == "allow":
                log.info("mandate: exit %s not checked (exit_policy allow)", pair)
                return True
            if s is None or client is None:
                log.error("mandate: exit %s before bot_start; %s", pair,
                          "denied (strict)" if policy == "strict" else "let through")
                return policy != "strict"
            if self.mandate_halted:
                log.error("mandate denied exit %s: halted (%s); close the position by hand", pair,
                          self.mandate_halt_reason)
                return False
            trade = a.get("trade")
            side = "buy" if getattr(trade, "is_short", False) else "sell"
            order = self._mandate_order(pair, side, a["amount"], a["rate"], None, a.get("order_type"))
            self._mandate_sync_orders()
            decision = self._mandate_preflight(order)
            if not decision.allowed and policy == "check" and decision.codes == [UNREACHABLE]:
                log.error("mandate: CA unreachable; letting the exit of %s through (exit_policy check): %s",
                          pair, _reasons(decision))
                return True
            allowed = self._mandate_decide(f"exit ({a.get('exit_reason')})", pair, order, decision)
            if allowed:
                self._mandate_expect(pair, side, float(a["amount"]) if exact else None, decision)
            return allowed
        except Exception:  # noqa: BLE001
            log.exception("mandate: exit check for %s failed", pair)
            return policy != "strict"

    def _mandate_stake(self, stake: Any, a: Mapping[str, Any]) -> float:
        pair = str(a.get("pair"))
        try:
            s, client = self.mandate_settings, self.mandate_client
            if s is None or client is None or self.mandate_halted or not self.mandate_ready:
                log.warning("mandate: stake for %s is 0 (%s)", pair,
                            "halted" if self.mandate_halted else "no certificate")
                return 0.0
            proposed = float(stake or 0.0)
            band = client.risk_band(s.agent_id)  # HIGH when it cannot be read
            factor = s.band_scale.get(band, 0.0)
            return self._mandate_clamp(pair, band, factor, proposed, a.get("min_stake"), a.get("max_stake"))
        except Exception:  # noqa: BLE001 - Freqtrade would use the full stake on an exception
            log.exception("mandate: stake for %s is 0 (unexpected error)", pair)
            return 0.0

    @staticmethod
    def _mandate_clamp(
        pair: str, band: RiskBand, factor: float, proposed: float, min_stake: Any, max_stake: Any
    ) -> float:
        """``proposed`` × ``factor``, at least the exchange's minimum (unless that is above the
        proposed stake: then nothing) and at most ``max_stake``; 0 stays 0."""
        stake = proposed * factor
        if stake <= 0:
            log.warning("mandate: risk band %s: no new position in %s (stake 0)", band.value, pair)
            return 0.0
        if min_stake is not None and stake < float(min_stake):
            stake = float(min_stake) if float(min_stake) <= proposed else 0.0
        if max_stake is not None:
            stake = min(stake, float(max_stake))
        log.info("mandate: risk band %s: stake for %s %.8g (proposed %.8g)", band.value, pair, stake, proposed)
        return max(stake, 0.0)

    def _mandate_adjust(self, result: Any, a: Mapping[str, Any]) -> Any:
        """Position adjustments bypass ``confirm_trade_entry``/``custom_stake_amount`` in
        Freqtrade: an increase is checked here (halt, band, pre-trade check), a decrease
        follows ``exit_policy``."""
        try:
            stake, tag = (result if isinstance(result, tuple) else (result, None))
            if not stake:
                return result
            trade = a.get("trade")
            pair = str(getattr(trade, "pair", "?"))
            rate = float(a.get("current_rate") or 0.0)
            leverage = float(getattr(trade, "leverage", 1.0) or 1.0)
            amount = abs(float(stake)) * leverage / rate if rate else 0.0
            is_short = bool(getattr(trade, "is_short", False))
            if stake > 0:
                scaled = self._mandate_stake(stake, {"pair": pair, "min_stake": None, "max_stake": a.get("max_stake")})
                if scaled <= 0:
                    return None
                ok = self._mandate_confirm_entry({"pair": pair, "amount": scaled * leverage / rate if rate else 0.0,
                                                  "rate": rate, "side": "short" if is_short else "long",
                                                  "order_type": self._mandate_order_type("entry"),
                                                  "current_time": a.get("current_time")}, exact=False)
                return ((scaled, tag) if isinstance(result, tuple) else scaled) if ok else None
            ok = self._mandate_confirm_exit({"pair": pair, "trade": trade, "amount": amount, "rate": rate,
                                             "exit_reason": "partial_exit", "order_type": self._mandate_order_type("exit"),
                                             "current_time": a.get("current_time")}, exact=False)
            return result if ok else None
        except Exception:  # noqa: BLE001
            log.exception("mandate: position adjustment refused (unexpected error)")
            return None

    def _mandate_reprice(self, price: Any, a: Mapping[str, Any], is_entry: bool) -> Any:
        """``adjust_order_price`` answered ``price`` for the resting order ``a["order"]``: a new
        price makes Freqtrade cancel it and place a replacement (``execute_entry`` in mode
        ``replace``, or ``execute_trade_exit`` with the remaining amount), which no
        ``confirm_trade_*`` sees. So the replacement is checked here as a new order; anything
        but an allowed check answers the current price: Freqtrade keeps the order as it is."""
        o = a.get("order")
        current = a.get("current_order_rate")
        if current is None:
            current = getattr(o, "safe_placement_price", None)
        if not price or current is None:
            return price  # None or 0: cancel without a replacement (takes risk away)
        pair = str(a.get("pair") or getattr(a.get("trade"), "pair", "?"))
        what = f"{'entry' if is_entry else 'exit'} replacement of order {getattr(o, 'order_id', '?')} at {price}"
        try:
            if float(price) == float(current):
                return price  # Freqtrade keeps the order
            s, client = self.mandate_settings, self.mandate_client
            if not is_entry and s is not None and s.exit_policy == "allow":
                log.info("mandate: %s %s not checked (exit_policy allow)", what, pair)
                return price
            if s is None or client is None:
                log.warning("mandate denied %s %s: bot_start has not run; the order stays at %s", what, pair, current)
                return current
            if self.mandate_halted:
                log.warning("mandate denied %s %s: halted (%s); the order stays at %s", what, pair,
                            self.mandate_halt_reason, current)
                return current
            if not self.mandate_ready:
                log.warning("mandate denied %s %s: no valid certificate held; the order stays at %s", what, pair,
                            current)
                return current
            is_short = bool(getattr(a.get("trade"), "is_short", False))
            side = ("sell" if is_short else "buy") if is_entry else ("buy" if is_short else "sell")
            remaining = _num(getattr(o, "safe_remaining", 0.0))
            # An entry's replacement keeps the remaining stake (remaining × the order's price) at
            # the new price; an exit's is the remaining amount.
            amount = remaining * _num(getattr(o, "safe_price", 0.0)) / float(price) if is_entry else remaining
            order = self._mandate_order(pair, side, amount, float(price), None, "limit")
            self._mandate_sync_orders()
            decision = self._mandate_preflight(order)
            if self._mandate_decide(what, pair, order, decision):
                # Freqtrade may round the amount to the venue's precision: match any amount.
                self._mandate_expect(pair, side, None, decision)
                return price
            log.warning("mandate: the %s order of %s stays at %s", side, pair, current)
            return current
        except Exception:  # noqa: BLE001 - keep the order as it is (fail closed)
            log.exception("mandate denied %s %s: unexpected error (fail closed); the order stays at %s", what, pair,
                          current)
            return current

    # --- events ---------------------------------------------------------------------------------

    def _mandate_order_type(self, which: str) -> str | None:
        types = getattr(self, "order_types", None)
        return str(types.get(which)) if isinstance(types, Mapping) and types.get(which) else None

    def _mandate_event(self, pair: str, side: str | None, amount: float, price: float,
                       at: Any, success: bool, order_type: str | None = None) -> None:
        """An event of the older kind (no order state): a failed execution."""
        reporter = self.mandate_reporter
        if reporter is None:
            return
        order = self._mandate_order(pair, side or "buy", amount, price, at, order_type)
        if side is None:
            order = replace(order, side=None)
        reporter.report(order.to_event(success=success))

    # --- the order lifecycle ----------------------------------------------------------------------
    #
    # Freqtrade gives strategies no callback when it places or cancels an order:
    # confirm_trade_entry/confirm_trade_exit run before the order exists (no order id yet),
    # order_filled only when an order closed with something filled, ft_check_timed_out before a
    # cancellation that may still fail. What does not lie is its database, in which every order
    # is committed as soon as it was placed, updated from the exchange and marked closed or
    # deleted with its trade. So the mixin compares the database with what it reported
    # (_mandate_sync_orders) at the start of every loop (before Freqtrade handles the open
    # orders), before each pre-trade check (so the orders placed earlier in the same loop are
    # queued first) and at shutdown, and reports each order once per state: ``new`` with the
    # decision of the check that allowed it (matched by pair, side and amount: Freqtrade places
    # exactly what it confirmed), ``partially_filled`` as its filled amount grows, ``filled``,
    # ``cancelled`` or ``rejected`` when it closed. order_filled reports the fill at once.
    # Stop losses on the exchange are never checked before they are placed (Freqtrade places
    # them itself, and re-places them); they are not reported as resting orders, only their
    # fills, which move the position.
    #
    # Realised P&L: Freqtrade realises an exit order's profit when the order closes (filled, or
    # cancelled after a part filled): it then recalculates the trade from its closed orders
    # (Trade.update_trade, before order_filled, in the same commit as the order's status). So
    # the event reporting that close (its last fill, else its cancellation) carries what the
    # trade's realised total (_realised_of) grew by since the mixin last reported one of its
    # P&Ls (_mandate_pnl, per trade; at start what the trades still open had realised). A P&L
    # is entered there only once its event was queued: a repeated order_filled reports no
    # event and no P&L, and a P&L that no event took comes with the trade's next exit.

    def _mandate_note_orders_at_start(self) -> None:
        """At start: the orders a previous run placed. Open ones were reported then and are
        followed from here on (their fills and cancellation are reported); closed ones are
        done (Freqtrade's recovery paths call ``order_filled`` again for some)."""
        try:
            rows = list(FtOrder.session.scalars(select(FtOrder)).all())
        except Exception as e:  # noqa: BLE001 - no database (tests, a strategy loaded on its own)
            log.debug("mandate: no Freqtrade database at start (%r)", e)
            return
        with self._mandate_orders_lock:
            for o in rows:
                if not o.order_id:
                    continue
                if not o.ft_is_open:
                    self._mandate_closed_before.add(o.order_id)
                elif o.ft_order_side != "stoploss":
                    t = _TrackedOrder(o.order_id, o.ft_pair, o.side or o.ft_order_side, None, True)
                    t.filled = _decimal(_num(o.safe_filled))
                    self._mandate_tracked[o.order_id] = t
            try:  # what the open trades realised before: the run that closed those exits reported it
                for trade in FtTrade.session.scalars(select(FtTrade).filter(FtTrade.is_open.is_(True))).all():
                    total = _realised_of(trade)
                    if total is not None:
                        self._mandate_pnl[_trade_key(trade)] = (total, False)
            except Exception as e:  # noqa: BLE001
                log.warning("mandate: cannot read Freqtrade's open trades (%r); their earlier exits' P&L may be "
                            "reported again", e)

    def _mandate_expect(self, pair: str, side: str, amount: float | None, decision: Decision) -> None:
        if decision.decision_id is None or self.mandate_reporter is None:
            return
        with self._mandate_orders_lock:
            self._mandate_expected[(pair, side)] = _Expected(
                decision.decision_id, amount, dt.datetime.now(dt.timezone.utc))

    def _mandate_unexpect(self, pair: str, side: str) -> None:
        with self._mandate_orders_lock:
            self._mandate_expected.pop((pair, side), None)

    def _mandate_take_expected(self, o: Any) -> str | None:
        """The decision waiting for order ``o`` (same pair and side, placed after it, the amount
        it allowed), taken; ``None`` if none."""
        key = (str(o.ft_pair), str(o.ft_order_side))
        e = self._mandate_expected.get(key)
        if e is None:
            return None
        if _placed_at(o) < e.at - dt.timedelta(seconds=5):
            return None  # an older order
        amount = getattr(o, "ft_amount", None)
        if e.amount is not None and (amount is None or not math.isclose(float(amount), e.amount, rel_tol=1e-9)):
            return None
        del self._mandate_expected[key]
        return e.decision_id

    def _mandate_report(self, t: _TrackedOrder, o: Any, state: OrderState, at: dt.datetime, *,
                        fill: Decimal | None = None, success: bool | None = None,
                        realised: _Realised | None = None) -> None:
        """Queues one order event of ``t`` (``o``: Freqtrade's order, ``None`` once deleted),
        with the ``realised`` P&L (entered in the trade's ledger once queued)."""
        s, reporter = self.mandate_settings, self.mandate_reporter
        if s is None or reporter is None:
            return
        closing = state in (OrderState.CANCELLED, OrderState.REJECTED)
        kind = api_order_type(getattr(o, "order_type", None))
        amount = _decimal(_num(o.safe_amount)) if o is not None else Decimal(0)
        fill_price = _decimal(_num(o.safe_price)) if o is not None and fill is not None else None
        price = (_decimal(_num(o.safe_placement_price))
                 if o is not None and kind in ("limit", "stop_limit") and not closing else None)
        order = Order(
            action="trade_execution",
            market=market_of(t.pair, s.market_map),
            counterparty=s.counterparty,
            region=s.region,
            # Only a fill adds to the daily volume: the others carry no size, so that the
            # daemon's judgement of the event does not count the order's value a second time.
            size=_dq(fill * fill_price) if fill is not None and fill_price is not None else None,
            # The stake currency (or the one it is accounted as): the fill's value and the P&L.
            currency=s.currency if fill is not None or realised is not None else None,
            side=t.side,
            timestamp=at,
            quantity=amount if amount > 0 and not closing else None,
            price=price if price else None,
            order_type=kind,
        )
        queued = reporter.report(order.to_event(
            order_state=state, client_order_id=t.client_order_id, decision_id=t.decision_id,
            fill_quantity=fill, fill_price=fill_price, success=success,
            realised_pnl=realised.pnl if realised is not None else None))
        if realised is not None and queued:
            self._mandate_pnl[realised.key] = (realised.total, realised.closed)
            self._mandate_pnl.move_to_end(realised.key)

    def _mandate_track(self, o: Any, announce: bool) -> _TrackedOrder:
        """Starts following order ``o``; ``announce``: report it ``new`` (it rests, or rested)."""
        decision = self._mandate_take_expected(o) if o.ft_order_side != "stoploss" else None
        t = _TrackedOrder(str(o.order_id), str(o.ft_pair), str(o.side or o.ft_order_side), decision, False)
        self._mandate_tracked[t.order_id] = t
        if announce and _num(o.safe_amount) > 0:
            if decision is None:
                log.info("mandate: %s order %s of %s was placed without a pre-trade check of this bot "
                         "(an unchecked replacement, or a partial exit Freqtrade made itself); reporting it", o.side,
                         o.order_id, o.ft_pair)
            self._mandate_report(t, o, OrderState.NEW, _placed_at(o))
            t.announced = True
        return t

    def _mandate_fill(self, t: _TrackedOrder, o: Any, state: OrderState, at: dt.datetime,
                      realised: _Realised | None = None) -> bool:
        """Reports what ``o`` filled beyond what was reported of ``t`` (with the ``realised``
        P&L); ``True`` if it filled more."""
        filled = _decimal(_num(o.safe_filled))
        delta = filled - t.filled
        if delta > 0:
            self._mandate_report(t, o, state, at, fill=delta, realised=realised)
            t.filled = filled
            return True
        return False

    def _mandate_close(self, t: _TrackedOrder, o: Any, at: dt.datetime, trade: Any = None) -> None:
        """``o`` (``None``: deleted) rests no more: its last fill, then how it ended; an exit's
        close carries the P&L it realised (of ``trade``, else ``o``'s)."""
        if o is None:  # Freqtrade deletes a trade whose only entry was cancelled unfilled
            if t.announced and not t.closed:
                self._mandate_report(t, None, OrderState.CANCELLED, at, success=False if t.failed else None)
            t.closed = True
            return
        status = str(o.status or "").lower()
        fill_at = _filled_at(o, at)
        if status == "closed":
            self._mandate_fill(t, o, OrderState.FILLED, fill_at, self._mandate_realised(o, trade))
        elif status == "rejected" and t.filled == 0 and not _num(o.safe_filled):
            if not t.closed:
                self._mandate_report(t, o, OrderState.REJECTED, at)
        else:  # cancelled or expired, by Freqtrade or the venue; what filled before is a part
            realised = self._mandate_realised(o, trade)
            if self._mandate_fill(t, o, OrderState.PARTIALLY_FILLED, fill_at, realised):
                realised = None  # the last fill carried it
            if t.announced and not t.closed:
                failed = t.failed and t.filled == 0
                self._mandate_report(t, o, OrderState.CANCELLED, at, success=False if failed else None,
                                     realised=realised)
        t.closed = True

    def _mandate_realised(self, o: Any, trade: Any) -> _Realised | None:
        """What exit order ``o`` of ``trade`` (``None``: ``o``'s), now closed, realised: the
        growth of the trade's realised total (``_realised_of``) since the mixin last reported
        a P&L of it (see the comment above). ``None`` for an entry, an exit that filled
        nothing, a trade it cannot read, or a P&L not in the event's currency."""
        if trade is None:
            trade = getattr(o, "trade", None)
        entry_side = getattr(trade, "entry_side", None)
        # Freqtrade's own rule (recalc_trade_from_orders): every order not of the entry side is
        # an exit, the stop loss (ft_order_side "stoploss") included.
        if trade is None or entry_side not in ("buy", "sell") or o.ft_order_side == entry_side:
            return None
        if not _num(o.safe_filled) or not self._mandate_pnl_currency_ok(trade):
            return None
        total = _realised_of(trade)
        if total is None:
            return None
        key = _trade_key(trade)
        reported = self._mandate_pnl.get(key, (Decimal(0), False))[0]
        pnl = _dq(total - reported)
        return _Realised(key, total, pnl if pnl else Decimal(0), getattr(trade, "is_open", None) is False)

    def _mandate_pnl_currency_ok(self, trade: Any) -> bool:
        """Whether ``trade``'s P&L, in its stake currency, is in the events' ``currency``: it is
        that currency, or one the CA cannot name (USDT) that ``currency`` stands for (1:1). A
        stake currency the CA could name but ``currency`` is not: no P&L (logged once)."""
        s = self.mandate_settings
        assert s is not None
        stake = str(getattr(trade, "stake_currency", None) or self.config.get("stake_currency") or "").upper()
        if not stake or stake == s.currency or not (len(stake) == 3 and stake.isalpha()):
            return True
        if not self._mandate_pnl_currency_logged:
            self._mandate_pnl_currency_logged = True
            log.warning("mandate: the stake currency is %s but mandate.currency %s: realised P&L (in %s) is not "
                        "reported, and maxDailyLoss sees none from this bot", stake, s.currency, stake)
        return False

    def _mandate_sync_orders(self) -> None:
        """Compares Freqtrade's orders with what was reported (see the comment above) and
        reports the difference. Never raises; a no-op without a reporter or a database."""
        if self.mandate_reporter is None or not self.mandate_active:
            return
        try:
            open_orders = list(FtOrder.get_open_orders())
        except Exception as e:  # noqa: BLE001 - no database: only order_filled can report
            if not self._mandate_no_database_logged:
                self._mandate_no_database_logged = True
                log.warning("mandate: cannot read Freqtrade's orders (%r); only fills are reported", e)
            return
        try:
            now = dt.datetime.now(dt.timezone.utc)
            with self._mandate_orders_lock:
                resting: set[str] = set()
                for o in open_orders:
                    if not o.order_id or o.ft_order_side == "stoploss" or o.order_id in self._mandate_closed_before:
                        continue
                    resting.add(o.order_id)
                    t = self._mandate_tracked.get(o.order_id) or self._mandate_track(o, announce=True)
                    if not t.closed:
                        self._mandate_fill(t, o, OrderState.PARTIALLY_FILLED, now)
                for t in list(self._mandate_tracked.values()):
                    if t.announced and not t.closed and t.order_id not in resting:
                        self._mandate_close(t, FtOrder.order_by_id(t.order_id, t.pair), now)
                self._mandate_settle_expected(now)
                self._mandate_forget()
        except Exception:  # noqa: BLE001 - never raise into Freqtrade
            log.exception("mandate: reporting the order lifecycle failed")

    def _mandate_settle_expected(self, now: dt.datetime) -> None:
        """The decisions still waiting for an order: one Freqtrade recorded closed at once (an
        exit the venue rejected or expired; a fill went through order_filled) is reported so;
        after ``EXPECT_ORDER_SECS`` without an order, the decision led to none."""
        for (pair, side), e in list(self._mandate_expected.items()):
            age = (now - e.at).total_seconds()
            if age < 1.0:
                continue  # the order may be on its way (a force exit in Freqtrade's API thread)
            rows = FtOrder.session.scalars(
                select(FtOrder).filter(FtOrder.ft_pair == pair, FtOrder.ft_order_side == side)
                .order_by(FtOrder.id.desc()).limit(5)).all()
            for o in rows:
                if o.order_id in self._mandate_tracked or o.order_id in self._mandate_closed_before:
                    continue
                decision = self._mandate_take_expected(o)
                if decision is None:
                    continue
                status = str(o.status or "").lower()
                t = _TrackedOrder(str(o.order_id), pair, str(o.side or side), decision, False)
                self._mandate_tracked[t.order_id] = t
                if status == "rejected":
                    self._mandate_report(t, o, OrderState.REJECTED, now)
                    t.closed = True
                else:
                    self._mandate_report(t, o, OrderState.NEW, _placed_at(o))
                    t.announced = True
                    if not o.ft_is_open:
                        self._mandate_close(t, o, now)
                break
            else:
                if age > EXPECT_ORDER_SECS:
                    log.info("mandate: decision %s for a %s order of %s led to no order", e.decision_id, side, pair)
                    del self._mandate_expected[(pair, side)]

    def _mandate_forget(self) -> None:
        """Keeps the closed orders remembered to ``REMEMBERED_ORDERS``, the oldest forgotten."""
        excess = len(self._mandate_tracked) - REMEMBERED_ORDERS
        for order_id in [i for i, t in self._mandate_tracked.items() if t.closed][:max(0, excess)]:
            del self._mandate_tracked[order_id]
        excess = len(self._mandate_pnl) - REMEMBERED_ORDERS  # closed trades, the oldest first
        for key in [k for k, (_, closed) in self._mandate_pnl.items() if closed][:max(0, excess)]:
            del self._mandate_pnl[key]

    def _mandate_on_order_filled(self, a: Mapping[str, Any]) -> None:
        """``order_filled``: Freqtrade recorded order ``o`` closed with something filled (an
        entry, an exit, a stop loss, a position adjustment; or cancelled after a part filled).
        The fill is reported now, once: ``filled`` (or ``partially_filled`` and ``cancelled``),
        for its notional value at the fill time; an order not yet reported ``new`` that a
        pre-trade check allowed (it filled as it was placed) is reported ``new`` first."""
        try:
            o = a.get("order")
            if o is None or self.mandate_settings is None or self.mandate_reporter is None:
                return
            order_id = getattr(o, "order_id", None)
            if not order_id or order_id in self._mandate_closed_before:
                return
            now = a.get("current_time")
            if not isinstance(now, dt.datetime) or now.tzinfo is None:
                now = dt.datetime.now(dt.timezone.utc)
            with self._mandate_orders_lock:
                t = self._mandate_tracked.get(order_id)
                if t is None:
                    t = self._mandate_track(o, announce=False)
                    if t.decision_id is not None:  # it filled as it was placed: it was an order
                        self._mandate_report(t, o, OrderState.NEW, _placed_at(o))
                        t.announced = True
                self._mandate_close(t, o, now, a.get("trade"))
        except Exception:  # noqa: BLE001
            log.exception("mandate: reporting a fill failed")

    def _mandate_on_timeout(self, trade: Any, order: Any, current_time: Any) -> None:
        """Freqtrade cancels ``order`` after its timeout. Unfilled, that is a failed execution
        (``report_failures``): for an order reported ``new``, its ``cancelled`` event says so
        (``success: false``) once Freqtrade recorded the cancellation; for another, an event of
        the older kind says it now."""
        s = self.mandate_settings
        if s is None or not s.report_failures:
            return
        if float(getattr(order, "safe_filled", 0.0) or 0.0) > 0:
            return  # partly filled: the fill is reported, not a failure
        with self._mandate_orders_lock:
            t = self._mandate_tracked.get(str(getattr(order, "order_id", "")))
            if t is not None and t.announced and not t.closed:
                t.failed = True
                log.warning("mandate: %s order %s of %s timed out unfilled; its cancellation is reported as a "
                            "failed execution", getattr(order, "side", "?"), t.order_id, t.pair)
                return
        self._mandate_report_failure(trade, order, current_time)

    def _mandate_report_failure(self, trade: Any, order: Any, current_time: Any) -> None:
        s = self.mandate_settings
        if s is None or not s.report_failures:
            return
        if float(getattr(order, "safe_filled", 0.0) or 0.0) > 0:
            return  # partly filled: the fill is reported by order_filled
        amount = float(getattr(order, "safe_amount", 0.0) or 0.0)
        price = float(getattr(order, "safe_placement_price", 0.0) or 0.0)
        log.warning("mandate: %s order for %s timed out unfilled; reporting a failed execution",
                    getattr(order, "side", "?"), getattr(trade, "pair", "?"))
        self._mandate_event(str(getattr(trade, "pair", "")), getattr(order, "side", None), amount, price,
                            current_time, False, getattr(order, "order_type", None))

    def mandate_report_failure(self, pair: str, side: str, amount: float, rate: float,
                               at: dt.datetime | None = None) -> None:
        """For strategies that see a failed execution themselves: reports it (``success``
        false; counts towards the mandate's ``maxConsecutiveFailures``). Never raises."""
        try:
            self._mandate_event(pair, side, amount, rate, at or dt.datetime.now(dt.timezone.utc), False)
        except Exception:  # noqa: BLE001
            log.exception("mandate: reporting a failure failed")


# --- an example strategy ------------------------------------------------------------------------


class MandateSampleStrategy(MandateStrategyMixin, IStrategy):  # type: ignore[misc]  # freqtrade is untyped
    """A deliberately trivial moving-average crossover (pandas only, no TA-Lib) under a
    mandate. Copy the ``class ...(MandateStrategyMixin, IStrategy)`` line into your own."""

    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.05}
    stoploss = -0.05
    can_short = False
    process_only_new_candles = True
    startup_candle_count = 30
    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": True,  # stop losses do not depend on the CA answering
    }

    def populate_indicators(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        dataframe["sma_fast"] = dataframe["close"].rolling(10).mean()
        dataframe["sma_slow"] = dataframe["close"].rolling(30).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        crossed_up = (dataframe["sma_fast"] > dataframe["sma_slow"]) & (
            dataframe["sma_fast"].shift(1) <= dataframe["sma_slow"].shift(1)
        )
        dataframe.loc[crossed_up & (dataframe["volume"] > 0), ["enter_long", "enter_tag"]] = (1, "sma_cross")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        crossed_down = (dataframe["sma_fast"] < dataframe["sma_slow"]) & (
            dataframe["sma_fast"].shift(1) >= dataframe["sma_slow"].shift(1)
        )
        dataframe.loc[crossed_down & (dataframe["volume"] > 0), "exit_long"] = 1
        return dataframe
