"""``CertificateKeeper``: keeps a bot's certificate valid by itself.

A bot that runs for weeks on 24-hour certificates renews about twenty times; none of those may
cost it a refused trade, a lost key or a half-written file. The keeper:

* renews when the CA says so: inside (or past) the window of ACME Renewal Information
  (RFC 9773, ``GET /acme/renewal-info/{certID}``; a revoked certificate, or one a newer mandate
  version retires, has its window in the past), at two thirds of the lifetime when ARI cannot
  be asked, and whenever the certificate is missing, expired, or not for the key beside it;
* makes a **new key** for every renewal and writes it (0600, atomically) to a pending file
  ``<key_path>.next`` **before** asking the CA, so a crash or a lost answer never leaves an
  issued certificate whose key is gone; a failed attempt keeps that key and sends it again;
* then replaces the certificate and the key, each atomically (temporary file in the same
  directory, ``fsync``, ``os.replace``, ``fsync`` of the directory), **certificate first**:
  see :meth:`CertificateKeeper.ensure` for why;
* in the background (:meth:`~CertificateKeeper.start`), wakes at a jittered time inside the
  window or when ``Retry-After`` says to ask ARI again, backs off (bounded, and never beyond
  a quarter of the time the certificate has left) when a renewal fails, and renews at once
  when told to (:meth:`~CertificateKeeper.renew_now`, e.g. from a ``certificate.superseded``
  webhook).

Nothing here logs key material: only serials, paths, times and the daemon's answers.
"""

from __future__ import annotations

import base64
import datetime as _dt
import logging
import os
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from .client import MandateClient
from .errors import (
    CertificateStoreError,
    CertificationFailed,
    MandateError,
    MandateProtocolError,
    RenewalError,
)
from .keys import KEY_TYPES, csr_for_key, generate_key_and_csr, key_type_of
from .models import IssuedCertificate

__all__ = ["CertificateKeeper", "HeldCertificate", "RenewalWindow", "ari_cert_id"]

log = logging.getLogger("mandate_client.renewal")

_E = TypeVar("_E", bound=RenewalError)

#: Bounds on ARI's ``Retry-After``: RFC 9773 asks clients to clamp it to something sensible.
ARI_MIN_POLL = 60.0
ARI_MAX_POLL = 24 * 3600.0
#: When the daemon sends no ``Retry-After`` (it sends 6 h).
ARI_DEFAULT_POLL = 6 * 3600.0


def _utc(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _serial_bytes(serial: int) -> bytes:
    """The DER content octets of a positive INTEGER: big-endian, minimal, with a leading 0x00
    when the high bit would otherwise be set."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def _load_cert(cert: x509.Certificate | str | bytes) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    data = cert.encode("ascii") if isinstance(cert, str) else cert
    return x509.load_pem_x509_certificates(data)[0]


def ari_cert_id(cert: x509.Certificate | str | bytes) -> str:
    """The RFC 9773 certID of a certificate (PEM text, or a ``cryptography`` certificate; of a
    PEM bundle the first): ``base64url(AuthorityKeyIdentifier.keyIdentifier)`` ``.``
    ``base64url(serial number's DER content octets)``, both without padding."""
    c = _load_cert(cert)
    try:
        aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise ValueError("the certificate has no AuthorityKeyIdentifier: no ARI certID") from None
    if aki.key_identifier is None:
        raise ValueError("the AuthorityKeyIdentifier has no keyIdentifier: no ARI certID")
    return f"{_b64url(aki.key_identifier)}.{_b64url(_serial_bytes(c.serial_number))}"


@dataclass(frozen=True)
class HeldCertificate:
    """The certificate a keeper holds (read from ``cert_path``).

    ``serial_number`` is lowercase hex as the API spells it; ``profile`` is known only for a
    certificate this keeper had issued (``None`` when loaded from disk or from an older daemon).
    """

    serial_number: str
    not_before: _dt.datetime
    not_after: _dt.datetime
    cert_id: str | None  # None: no AuthorityKeyIdentifier, so no ARI (two thirds of the lifetime)
    sha256_fingerprint: str
    certificate_pem: str = field(repr=False)
    profile: str | None = None

    @property
    def lifetime(self) -> _dt.timedelta:
        return self.not_after - self.not_before

    def valid_at(self, when: _dt.datetime) -> bool:
        """Not expired at ``when`` (``notAfter`` is its last second, RFC 5280). ``notBefore`` is
        not checked: a clock a little behind the CA's must not make a certificate just issued
        look invalid, and renewed again and again."""
        return when <= self.not_after

    @classmethod
    def from_certificate(cls, cert: x509.Certificate, profile: str | None = None) -> HeldCertificate:
        hex_serial = format(cert.serial_number, "x")
        try:
            cert_id: str | None = ari_cert_id(cert)
        except ValueError:
            cert_id = None
        return cls(
            # The API's spelling: the serial's bytes in hex (this CA's serials never need a
            # leading zero byte), so an even number of digits.
            serial_number=hex_serial.zfill(len(hex_serial) + len(hex_serial) % 2),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            cert_id=cert_id,
            sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            profile=profile,
        )


@dataclass(frozen=True)
class RenewalWindow:
    """When the held certificate should be renewed: from ``start`` to ``end``; ``source`` is
    ``ari`` (the CA's answer) or ``fallback`` (2/3 to 5/6 of the lifetime, ARI could not be
    asked); ARI is asked again at ``refresh_at``."""

    serial_number: str
    start: _dt.datetime
    end: _dt.datetime
    source: str
    refresh_at: _dt.datetime
    explanation_url: str | None = None


@dataclass(frozen=True)
class _Files:
    """What was read from disk (``problem``: why it is not a usable certificate for the key
    beside it), and the stat of each file it came from, to read again only after a change."""

    stamp: tuple[object, ...]
    held: HeldCertificate | None = None
    problem: str | None = None


def _public_der(key: Any) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a private key, or of a public key."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    der: bytes = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _stat(path: Path) -> object:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _fsync_dir(directory: Path) -> None:
    """Makes renames in ``directory`` durable (where the platform allows opening one)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, never a
    part: a temporary file in the same directory, created with ``mode`` (never wider, even
    briefly), written and ``fsync``-ed, then renamed over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)  # ours (O_EXCL)
        raise


class CertificateKeeper:
    """Keeps a valid certificate for ``agent_id`` in ``cert_path``, for the key in ``key_path``.

    ``cert_path`` holds the leaf followed by the chain (intermediate, root), what TLS servers
    and the Freqtrade mixin read; ``chain_path``, if given, gets the chain alone as well.
    Renewals make a new key of ``key_type`` each time and ask for ``profile`` (e.g.
    ``shortlived``: 24 h) or ``validity_days`` (at most one; neither: the CA's default
    profile). ``revoke_replaced`` revokes the certificate a renewal replaced (reason
    ``superseded``: the daemon counts that as renewal, never as a reason to halt), since its key
    is gone from disk and nobody should be able to use it. ``on_renewed`` is called (in the
    renewing thread) with each new certificate once its files are in place, before the old one
    is revoked, so listeners know the new serial before the old one's revocation is announced.

    Use :meth:`ensure` from your own schedule, or :meth:`start` a background thread (and
    :meth:`stop` it; or use the keeper as a context manager). Thread-safe.
    """

    def __init__(
        self,
        client: MandateClient,
        agent_id: str,
        key_path: str | os.PathLike[str],
        cert_path: str | os.PathLike[str],
        *,
        chain_path: str | os.PathLike[str] | None = None,
        key_type: str = "ec-p256",
        profile: str | None = None,
        validity_days: int | None = None,
        dns_name: str | None = None,
        revoke_replaced: bool = True,
        on_renewed: Callable[[HeldCertificate], None] | None = None,
        jitter: float = 0.5,
        min_backoff: float = 2.0,
        max_backoff: float = 300.0,
        max_sleep: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not agent_id:
            raise ValueError("agent_id must not be empty")
        if profile is not None and validity_days is not None:
            raise ValueError("give at most one of profile and validity_days")
        rsa_bits = key_type[4:] if key_type.startswith("rsa-") else ""
        if key_type not in KEY_TYPES and not (rsa_bits.isdigit() and 2048 <= int(rsa_bits) <= 8192):
            raise ValueError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter is a fraction of the renewal window: 0 to 1")
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        self.client = client
        self.agent_id = agent_id
        self.key_path = Path(key_path)
        self.cert_path = Path(cert_path)
        self.chain_path = Path(chain_path) if chain_path is not None else None
        #: Where a new key waits for its certificate (kept when certify fails; reused next time).
        self.pending_key_path = self.key_path.with_name(self.key_path.name + ".next")
        self.key_type = key_type
        self.profile = profile
        self.validity_days = validity_days
        self.dns_name = dns_name
        self.revoke_replaced = revoke_replaced
        self.on_renewed = on_renewed
        self.jitter = jitter
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.max_sleep = max_sleep
        self._clock = clock

        # One ensure() at a time; reentrant, so on_renewed may call ensure() (it returns at once).
        self._lock = threading.RLock()
        self._marks_lock = threading.Lock()  # renew_now() never waits for a renewal
        self._marked: dict[str, str] = {}  # serial -> why it must be renewed now
        self._renew_any: str | None = None  # renew_now() before anything was held
        self._files: _Files | None = None
        self._held: HeldCertificate | None = None
        self._window: RenewalWindow | None = None
        self._jitter_of: dict[str, float] = {}
        self._ari_warned: set[str] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: Renewals that succeeded, failed, and the last failure (for monitoring).
        self.renewals = 0
        self.failures = 0
        self.last_error: RenewalError | None = None
        self.next_wake: _dt.datetime | None = None

    def __repr__(self) -> str:
        return (
            f"CertificateKeeper(agent_id={self.agent_id!r}, cert_path={str(self.cert_path)!r}, "
            f"profile={self.profile!r})"
        )

    # --- state --------------------------------------------------------------------------------

    def _now(self) -> _dt.datetime:
        return _utc(self._clock())

    @property
    def held(self) -> HeldCertificate | None:
        """The certificate last read or issued (valid or not); no I/O."""
        return self._held

    @property
    def current(self) -> HeldCertificate | None:
        """The certificate held, if it is valid now (by this machine's clock); no I/O."""
        held = self._held
        return held if held is not None and held.valid_at(self._now()) else None

    @property
    def window(self) -> RenewalWindow | None:
        """The renewal window of the held certificate, as last learnt; no I/O."""
        w, held = self._window, self._held
        return w if w is not None and held is not None and w.serial_number == held.serial_number else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- ensure ---------------------------------------------------------------------------------

    def ensure(self, *, force: bool = False) -> HeldCertificate:
        """Makes sure a valid certificate is on disk and returns it. Idempotent and cheap when
        nothing is due: the files are re-read only when they changed, and ARI is asked once per
        ``Retry-After``. Renews (at most once per call) when the certificate is missing,
        unreadable, expired, not for ``agent_id``, not for the key beside it, marked by
        :meth:`renew_now`, inside or past its renewal window, or ``force``.

        A renewal replaces the certificate first and the key second. A reader that reads both
        between the two renames sees the new certificate with the old key; that lasts two
        ``rename`` calls, and is the order that survives a crash: the new key is still in
        ``<key_path>.next`` and matches the new certificate, so the next ``ensure`` finishes
        the rename (the other order would leave the new key beside the old certificate, and the
        new certificate only in memory: lost, and the old key with it).

        Raises :class:`CertificationFailed` (the CA did not issue; the new key is kept for the
        next attempt) or :class:`CertificateStoreError` (the files); either carries ``.held``,
        the certificate still valid, if any.
        """
        with self._lock:
            now = self._now()
            files = self._read()
            held = self._held  # the certificate on disk if it is one for our key and agent
            why = files.problem
            if why is None and held is not None and not held.valid_at(now):
                why = f"certificate {held.serial_number} is not valid now (until {held.not_after.isoformat()})"
                held = None
            if why is None and force:
                why = "renewal forced"
            if why is None and held is not None:
                with self._marks_lock:
                    why = self._marked.get(held.serial_number) or self._renew_any
            if why is None and held is not None:
                window = self._window_for(held, now)
                if now >= window.start:
                    why = (
                        f"inside its renewal window ({window.source}: "
                        f"{window.start.isoformat()} to {window.end.isoformat()})"
                    )
            if why is None and held is not None:
                return held
            return self._renew(why or "no certificate", held)

    def renew_now(self, serial_number: str | None = None, reason: str = "told to renew now") -> bool:
        """Marks the certificate ``serial_number`` (default: the one held) to be renewed and
        wakes the background thread; the next :meth:`ensure` renews it. Returns ``False`` (and
        does nothing) when ``serial_number`` is not the certificate held: an older certificate
        of the agent, already replaced. Never blocks on a renewal in progress; safe from a
        webhook handler's thread."""
        held = self._held
        with self._marks_lock:
            if serial_number is None:
                if held is None:
                    self._renew_any = reason
                else:
                    self._marked[held.serial_number] = reason
            elif held is not None and serial_number.lower() != held.serial_number:
                log.info("%s: %s is not the certificate held (%s); nothing to renew (%s)",
                         self.agent_id, serial_number, held.serial_number, reason)
                return False
            else:
                self._marked[serial_number.lower()] = reason
        log.info("%s: renewal requested: %s", self.agent_id, reason)
        self._wake.set()
        return True

    # --- reading the files ----------------------------------------------------------------------

    def _read(self) -> _Files:
        """The certificate on disk and what is wrong with it, if anything (read again only
        when a file changed); finishes a renewal that was interrupted between its renames."""
        stamp = (_stat(self.cert_path), _stat(self.key_path), _stat(self.pending_key_path))
        files = self._files
        if files is None or files.stamp != stamp:
            files = self._files = self._read_files(stamp)
        held = files.held if files.problem is None else None
        if held is None or self._held is None or self._held.serial_number != held.serial_number:
            self._held = held  # else keep ours: it knows the profile
        return files

    def _read_files(self, stamp: tuple[object, ...]) -> _Files:
        if stamp[0] is None:
            return _Files(stamp, problem=f"no certificate at {self.cert_path}")
        try:
            cert = x509.load_pem_x509_certificates(self.cert_path.read_bytes())[0]
            held = HeldCertificate.from_certificate(cert)
        except (OSError, ValueError, IndexError) as e:
            return _Files(stamp, problem=f"{self.cert_path} unreadable ({type(e).__name__}: {e})")
        names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [self.agent_id]:
            return _Files(stamp, held, f"{self.cert_path} names {names}, not {self.agent_id}")
        want = _public_der(cert.public_key())
        if self._key_der(self.key_path) == want:
            return _Files(stamp, held)
        if stamp[2] is not None and self._key_der(self.pending_key_path) == want:
            # A renewal replaced the certificate, then stopped before renaming the key.
            try:
                os.replace(self.pending_key_path, self.key_path)
                _fsync_dir(self.key_path.parent)
            except OSError as e:
                return _Files(stamp, held, f"could not finish an interrupted renewal ({e})")
            log.warning("%s: finished an interrupted renewal: %s now holds the key of certificate %s",
                        self.agent_id, self.key_path, held.serial_number)
            return _Files((stamp[0], _stat(self.key_path), _stat(self.pending_key_path)), held)
        return _Files(stamp, held, f"{self.cert_path} is not the certificate of the key in {self.key_path}")

    @staticmethod
    def _key_der(path: Path) -> bytes | None:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            return None
        return _public_der(key)

    # --- the renewal window --------------------------------------------------------------------

    def _window_for(self, held: HeldCertificate, now: _dt.datetime) -> RenewalWindow:
        w = self._window
        if w is not None and w.serial_number == held.serial_number and now < w.refresh_at:
            return w
        life = held.lifetime
        fallback_start, fallback_end = held.not_before + life * 2 / 3, held.not_before + life * 5 / 6
        try:
            if held.cert_id is None:
                raise MandateProtocolError(title="No certID", detail="the certificate has no AuthorityKeyIdentifier")
            info = self.client.renewal_info(held.cert_id)
            if info.end > held.not_after:  # renewing after expiry is no advice to follow
                raise MandateProtocolError(
                    title="Bad window", detail=f"the suggested window ends after the certificate ({info.end.isoformat()})")
            poll = info.retry_after if info.retry_after is not None else ARI_DEFAULT_POLL
            # RFC 9773 4.3.2: clamp to a sane range; a minute at least, unless the certificate
            # lives so briefly that a tenth of its life is less.
            floor = min(ARI_MIN_POLL, max(1.0, held.lifetime.total_seconds() / 10))
            poll = min(max(poll, floor), ARI_MAX_POLL)
            w = RenewalWindow(held.serial_number, info.start, info.end, "ari",
                              now + _dt.timedelta(seconds=poll), info.explanation_url)
            if info.end <= now:
                log.warning("%s: the CA asks to renew certificate %s now (ARI window %s to %s)%s",
                            self.agent_id, held.serial_number, info.start.isoformat(), info.end.isoformat(),
                            f"; see {info.explanation_url}" if info.explanation_url else "")
        except MandateError as e:
            again = min(300.0, max(1.0, life.total_seconds() / 20))
            if e.retry_after is not None:
                again = max(again, min(e.retry_after, 300.0))
            w = RenewalWindow(held.serial_number, fallback_start, fallback_end, "fallback",
                              now + _dt.timedelta(seconds=again))
            level = logging.DEBUG if held.serial_number in self._ari_warned else logging.WARNING
            self._ari_warned = {held.serial_number}
            log.log(level, "%s: no renewal information for certificate %s (%s); renewing at two thirds "
                    "of its lifetime, from %s", self.agent_id, held.serial_number, e, w.start.isoformat())
        self._window = w
        return w

    # --- renewing -------------------------------------------------------------------------------

    def _pending_key(self) -> bytes:
        """The key waiting for a certificate: the one a failed attempt left, if it is still of
        ``key_type``, else a new one, on disk (0600) before this returns."""
        try:
            pem = self.pending_key_path.read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
            if key_type_of(key) == self.key_type:
                log.info("%s: reusing the key of an earlier attempt (%s)", self.agent_id, self.pending_key_path)
                return pem
            log.info("%s: the pending key in %s is not %s; making a new one",
                     self.agent_id, self.pending_key_path, self.key_type)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as e:
            log.warning("%s: pending key %s unreadable (%s); making a new one",
                        self.agent_id, self.pending_key_path, type(e).__name__)
        pem = generate_key_and_csr(self.agent_id, self.key_type).private_key_pem
        self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(self.pending_key_path, pem, 0o600)
        _fsync_dir(self.pending_key_path.parent)
        return pem

    def _renew(self, why: str, valid: HeldCertificate | None) -> HeldCertificate:
        """A new certificate for the pending key; ``valid`` is the certificate it replaces, if
        that is still valid (revoked afterwards with ``revoke_replaced``)."""
        log.info("%s: renewing the certificate: %s", self.agent_id, why)
        try:
            key_pem = self._pending_key()
        except OSError as e:
            raise self._failed(CertificateStoreError(
                f"{self.agent_id}: cannot write the new key to {self.pending_key_path}: {e}",
                error=e, agent_id=self.agent_id, held=valid)) from e
        csr = csr_for_key(key_pem, self.agent_id, dns_name=self.dns_name)
        try:
            issued = self.client.certify(
                self.agent_id, csr, profile=self.profile, validity_days=self.validity_days
            )
        except MandateError as e:
            raise self._failed(CertificationFailed(
                f"{self.agent_id}: the CA did not issue a certificate: {e}; the new key stays in "
                f"{self.pending_key_path} for the next attempt", error=e, agent_id=self.agent_id,
                held=valid)) from e
        cert = self._check_issued(issued, key_pem, valid)
        try:
            self._store(issued)
        except OSError as e:
            raise self._failed(CertificateStoreError(
                f"{self.agent_id}: certificate {issued.serial_number} was issued but could not be "
                f"stored: {e}; its key stays in {self.pending_key_path}", error=e,
                agent_id=self.agent_id, held=valid)) from e
        held = HeldCertificate.from_certificate(cert, profile=issued.profile)
        self._held = held
        self._files = None
        self._window = None
        self._jitter_of.clear()
        with self._marks_lock:  # every mark was for a certificate this one replaces
            self._marked = {k: v for k, v in self._marked.items() if k == held.serial_number}
            self._renew_any = None
        self.renewals += 1
        self.last_error = None
        log.info("%s: certificate %s issued%s, valid until %s, in %s",
                 self.agent_id, held.serial_number, f" (profile {issued.profile})" if issued.profile else "",
                 held.not_after.isoformat(), self.cert_path)
        if self.on_renewed is not None:
            try:
                self.on_renewed(held)
            except Exception:  # noqa: BLE001 - the renewal stands whatever the callback does
                log.exception("%s: on_renewed callback failed", self.agent_id)
        # Only a certificate that was valid for our key and agent: never one of another agent
        # that happened to be in the file.
        if self.revoke_replaced and valid is not None and valid.serial_number != held.serial_number:
            try:
                self.client.revoke_certificate(valid.serial_number, "superseded",
                                               comment="replaced by a renewal (CertificateKeeper)")
                log.info("%s: revoked the replaced certificate %s (superseded)", self.agent_id, valid.serial_number)
            except MandateError as e:
                log.warning("%s: could not revoke the replaced certificate %s: %s",
                            self.agent_id, valid.serial_number, e)
        return held

    def _check_issued(self, issued: IssuedCertificate, key_pem: bytes,
                      valid: HeldCertificate | None) -> x509.Certificate:
        """The issued leaf, if it certifies the key sent for ``agent_id``."""
        def bad(detail: str) -> CertificationFailed:
            err = MandateProtocolError(title="Malformed answer", detail=detail)
            return self._failed(CertificationFailed(f"{self.agent_id}: {detail}", error=err,
                                                    agent_id=self.agent_id, held=valid))
        try:
            cert = x509.load_pem_x509_certificates(issued.certificate_pem.encode("ascii"))[0]
        except (ValueError, IndexError, UnicodeEncodeError) as e:
            raise bad(f"certify answered a certificate that does not parse ({e})") from None
        key = serialization.load_pem_private_key(key_pem, password=None)
        if _public_der(cert.public_key()) != _public_der(key):
            raise bad(f"certificate {issued.serial_number} is not for the key sent")
        return cert

    def _store(self, issued: IssuedCertificate) -> None:
        """Chain, certificate, then key (see :meth:`ensure` for the order); each atomic."""
        leaf = issued.certificate_pem if issued.certificate_pem.endswith("\n") else issued.certificate_pem + "\n"
        chain = issued.chain_pem if issued.chain_pem.endswith("\n") or not issued.chain_pem else issued.chain_pem + "\n"
        self.cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.chain_path is not None:
            _write_atomic(self.chain_path, chain.encode("ascii"), 0o644)
        _write_atomic(self.cert_path, (leaf + chain).encode("ascii"), 0o644)
        os.replace(self.pending_key_path, self.key_path)
        _fsync_dir(self.cert_path.parent)
        if self.key_path.parent != self.cert_path.parent:
            _fsync_dir(self.key_path.parent)

    def _failed(self, err: _E) -> _E:
        self.failures += 1
        self.last_error = err
        level = logging.WARNING if err.held is not None else logging.ERROR
        log.log(level, "%s%s", err, f" (certificate {err.held.serial_number} stays valid until "
                f"{err.held.not_after.isoformat()})" if err.held is not None else "")
        return err

    # --- background -----------------------------------------------------------------------------

    def start(self) -> CertificateKeeper:
        """Starts the background thread (a daemon thread; idempotent)."""
        if self.running and not self._stop.is_set():
            return self
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()  # one told to stop, still finishing a request: at most its timeout
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"mandate-keeper-{self.agent_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stops the background thread; waits up to ``timeout`` s for a renewal in progress
        (``0``: only tells it to stop)."""
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread() and timeout != 0:
            t.join(timeout)

    def __enter__(self) -> CertificateKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()  # a renew_now() from here on wakes the wait below
            try:
                held = self.ensure()
                failures = 0
                delay = self._delay_until_due(held)
            except RenewalError as e:
                failures += 1
                delay = self._backoff(failures, e)
                log.info("%s: next attempt in %.1f s", self.agent_id, delay)
            except Exception:  # noqa: BLE001 - the thread must outlive any surprise
                failures += 1
                log.exception("%s: certificate keeper failed unexpectedly", self.agent_id)
                delay = self._backoff(failures, None)
            self.next_wake = _utc(self._clock() + delay)
            self._wake.wait(delay)

    def _delay_until_due(self, held: HeldCertificate) -> float:
        """Seconds until a jittered point in the first ``jitter`` part of the window, or until
        ARI is to be asked again, or ``max_sleep``; at least a second (no busy loop, even when a
        CA keeps answering "renew now" for the certificate it just issued)."""
        now = self._clock()
        w = self.window
        if w is None:
            return 1.0
        frac = self._jitter_of.setdefault(held.serial_number, random.uniform(0.0, self.jitter))
        span = (w.end - w.start).total_seconds()
        renew_at = w.start.timestamp() + max(0.0, span) * frac
        due = min(renew_at, w.refresh_at.timestamp(), held.not_after.timestamp())
        return min(max(1.0, due - now), self.max_sleep)

    def _backoff(self, failures: int, err: RenewalError | None) -> float:
        """Exponential from ``min_backoff`` to ``max_backoff``, at least what ``Retry-After``
        asked (up to ``max_backoff``), at most a quarter of the time the certificate has left
        (so an outage still gets several tries before expiry), with jitter."""
        base = min(self.max_backoff, self.min_backoff * 2.0 ** min(failures - 1, 30))
        if err is not None and err.retry_after is not None:
            base = max(base, min(err.retry_after, self.max_backoff))
        held = self.current
        if held is not None:
            left = held.not_after.timestamp() - self._clock()
            base = min(base, max(self.min_backoff, left / 4))
        return max(0.5, base * random.uniform(0.5, 1.0))
