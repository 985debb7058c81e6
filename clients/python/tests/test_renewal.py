"""``CertificateKeeper`` against a stub CA (``helpers.StubServer``): a real X.509 issuer made
here signs the CSRs it is sent, and answers ARI for its certificates, so the keeper's window
logic, file handling and failures can be driven where the real daemon never goes (a clock
moved at will, 503s, a dead ARI, a crash between two renames)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import wait_for
from helpers import StubServer, free_port_closed, problem
from mandate_client import (
    CertificateKeeper,
    CertificateStoreError,
    CertificationFailed,
    MandateClient,
    MandateError,
    ari_cert_id,
    generate_key_and_csr,
)

AGENT = "keeper-bot"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
Answer = tuple[int, dict[str, str], bytes]


def pub_der(obj: Any) -> bytes:
    key = obj.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[no-any-return]


class Clock:
    """The keeper's and the stub CA's clock, moved by the test."""

    def __init__(self, at: dt.datetime = T0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class StubCA:
    """A CA: ``POST /v1/agents/{id}/certify`` signs the CSR for ``lifetime``; ``GET
    /acme/renewal-info/{certID}`` answers 2/3 to 5/6 of the lifetime (past for a serial in
    ``renew_now``); ``POST /v1/certificates/{serial}/revoke`` records it. ``certify_fails`` /
    ``ari_fails`` make those answer a problem instead; ``before_certify`` runs first (the
    test's look at the disk at that moment)."""

    def __init__(self, now: Callable[[], dt.datetime] = real_now,
                 lifetime: dt.timedelta = dt.timedelta(hours=24)) -> None:
        self.now = now
        self.lifetime = lifetime
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stub Issuing CA")])
        self.ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        root = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(T0 - dt.timedelta(days=1)).not_valid_after(T0 + dt.timedelta(days=3650))
            .add_extension(self.ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.chain_pem = root.public_bytes(serialization.Encoding.PEM).decode()
        self.issued: dict[str, x509.Certificate] = {}
        self.csr_keys: list[bytes] = []
        self.bodies: list[dict[str, Any]] = []
        self.revoked: list[tuple[str, str]] = []
        self.renew_now: set[str] = set()
        self.certify_fails: Answer | None = None
        self.ari_fails: Answer | None = None
        self.ari_retry_after = "21600"
        self.before_certify: Callable[[], None] | None = None
        self.high_bit_serial = False
        self.server = StubServer(self.handle)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()

    def paths(self, prefix: str) -> list[str]:
        return [p for m, p, b in self.server.requests if p.startswith(prefix)]

    def certifies(self) -> int:
        return len(self.paths(f"/v1/agents/{AGENT}/certify"))

    def ari_calls(self) -> int:
        return len(self.paths("/acme/renewal-info/"))

    def sign(self, csr: x509.CertificateSigningRequest, not_before: dt.datetime | None = None,
             lifetime: dt.timedelta | None = None) -> x509.Certificate:
        # Backdated as the daemon does: a tenth of the lifetime, at most a minute.
        nb = not_before or self.now().replace(microsecond=0) - min((lifetime or self.lifetime) / 10,
                                                                   dt.timedelta(seconds=60))
        serial = int.from_bytes(os.urandom(16), "big")
        serial = (serial | (1 << 127)) if self.high_bit_serial else (serial & ~(0xC0 << 120)) | (0x40 << 120)
        return (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.name)
            .public_key(csr.public_key()).serial_number(serial)
            .not_valid_before(nb).not_valid_after(nb + (lifetime or self.lifetime) - dt.timedelta(seconds=1))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self.ski), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def handle(self, method: str, path: str, body: bytes) -> Answer:
        if method == "POST" and path == f"/v1/agents/{AGENT}/certify":
            req = json.loads(body)
            self.bodies.append(req)
            csr = x509.load_pem_x509_csr(req["csr"].encode())
            self.csr_keys.append(pub_der(csr))
            if self.before_certify is not None:
                self.before_certify()
            if self.certify_fails is not None:
                return self.certify_fails
            cert = self.sign(csr)
            serial = format(cert.serial_number, "x")
            self.issued[serial] = cert
            answer = {
                "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
                "chain_pem": self.chain_pem, "serial_number": serial,
                "expires_at": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sha256_fingerprint": cert.fingerprint(hashes.SHA256()).hex(), "mandate_version": 1,
                **({"profile": req["profile"]} if "profile" in req else {}),
            }
            return 201, {"Content-Type": "application/json"}, json.dumps(answer).encode()
        if method == "GET" and path.startswith("/acme/renewal-info/"):
            if self.ari_fails is not None:
                return self.ari_fails
            cid = path.rsplit("/", 1)[1]
            serial = format(int.from_bytes(base64.urlsafe_b64decode(cid.split(".")[1] + "=="), "big"), "x")
            known = self.issued.get(serial)
            if known is None:
                return problem(400, "malformed", "no certificate of this CA has that certID")
            nb, na = known.not_valid_before_utc, known.not_valid_after_utc + dt.timedelta(seconds=1)
            if serial in self.renew_now:
                start, end = self.now() - dt.timedelta(hours=1), self.now() - dt.timedelta(minutes=1)
            else:
                start, end = nb + (na - nb) * 2 / 3, nb + (na - nb) * 5 / 6
            window = {"suggestedWindow": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                          "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}}
            headers = {"Content-Type": "application/json", "Retry-After": self.ari_retry_after}
            return 200, headers, json.dumps(window).encode()
        if method == "POST" and path.startswith("/v1/certificates/") and path.endswith("/revoke"):
            serial = path.split("/")[3]
            if serial not in self.issued:
                return problem(404, "not-found", f"certificate {serial} not found")
            self.revoked.append((serial, json.loads(body)["reason"]))
            view = {"serial_number": serial, "agent_id": AGENT, "mandate_version": 1, "status": "revoked",
                    "revocation_reason": json.loads(body)["reason"], "newly_revoked": True}
            return 200, {"Content-Type": "application/json"}, json.dumps(view).encode()
        return problem(404, "not-found", f"{method} {path}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ca(clock: Clock) -> Iterator[StubCA]:
    stub = StubCA(clock.now)
    yield stub
    stub.close()


def keeper_for(ca: StubCA, tmp_path: Path, clock: Clock, **kw: Any) -> CertificateKeeper:
    client = MandateClient(ca.url, "mk_0000000000000000_x", timeout=5)
    return CertificateKeeper(client, AGENT, tmp_path / "bot.key", tmp_path / "bot.crt", clock=clock, **kw)


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def key_der(path: Path) -> bytes:
    return pub_der(serialization.load_pem_private_key(path.read_bytes(), password=None))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- certID ---------------------------------------------------------------------------------


def test_ari_cert_id_is_aki_dot_serial_der_content(ca: StubCA) -> None:
    csr = x509.load_pem_x509_csr(generate_key_and_csr(AGENT).csr_pem.encode())
    ca.high_bit_serial = True  # the INTEGER's content gets a leading zero byte
    cert = ca.sign(csr)
    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    serial = b"\x00" + cert.serial_number.to_bytes(16, "big")
    assert ari_cert_id(cert) == f"{b64(ca.ski.digest)}.{b64(serial)}"
    assert "=" not in ari_cert_id(cert)
    ca.high_bit_serial = False
    cert = ca.sign(csr)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode() + ca.chain_pem  # a bundle: its first
    assert ari_cert_id(pem).endswith("." + b64(cert.serial_number.to_bytes(16, "big")))


# --- first certificate, files, idempotence ----------------------------------------------------


def test_the_first_ensure_writes_the_key_before_asking_for_its_certificate(
    ca: StubCA, clock: Clock, tmp_path: Path
) -> None:
    keeper = keeper_for(ca, tmp_path, clock, profile="shortlived")
    seen: dict[str, Any] = {}

    def look() -> None:  # what is on disk while the CA is being asked
        pending = tmp_path / "bot.key.next"
        seen["pending_mode"] = stat.S_IMODE(os.stat(pending).st_mode)
        seen["pending_matches_csr"] = key_der(pending) == ca.csr_keys[-1]
        seen["key_exists"] = (tmp_path / "bot.key").exists()

    ca.before_certify = look
    held = keeper.ensure()
    assert seen == {"pending_mode": 0o600, "pending_matches_csr": True, "key_exists": False}
    assert ca.bodies[-1]["profile"] == "shortlived" and "validity_days" not in ca.bodies[-1]
    assert held.profile == "shortlived" and keeper.current == held
    assert stat.S_IMODE(os.stat(tmp_path / "bot.key").st_mode) == 0o600
    assert not (tmp_path / "bot.key.next").exists()
    assert key_der(tmp_path / "bot.key") == pub_der(leaf(tmp_path / "bot.crt"))
    text = (tmp_path / "bot.crt").read_text()
    assert text.count("BEGIN CERTIFICATE") == 2 and text.endswith(ca.chain_pem)  # leaf + chain
    assert held.serial_number == format(leaf(tmp_path / "bot.crt").serial_number, "x")
    assert leftovers(tmp_path) == []
    assert ca.revoked == []  # nothing was replaced


def test_ensure_is_idempotent_and_asks_ari_once_per_retry_after(
    ca: StubCA, clock: Clock, tmp_path: Path
) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    first = keeper.ensure()
    assert (ca.certifies(), ca.ari_calls()) == (1, 0)
    for _ in range(5):
        assert keeper.ensure() == first
    assert (ca.certifies(), ca.ari_calls()) == (1, 1)  # ARI once, then its Retry-After (6 h)
    assert keeper.window is not None and keeper.window.source == "ari"
    clock.advance(hours=6, seconds=1)
    assert keeper.ensure() == first and ca.ari_calls() == 2
    # Another keeper over the same files (a restart) uses them as they are.
    again = keeper_for(ca, tmp_path, clock)
    assert again.ensure().serial_number == first.serial_number and ca.certifies() == 1


# --- the window ------------------------------------------------------------------------------


def test_renews_inside_the_ari_window_with_a_new_key_and_revokes_the_old_certificate(
    ca: StubCA, clock: Clock, tmp_path: Path
) -> None:
    renewed: list[str] = []
    keeper = keeper_for(ca, tmp_path, clock, on_renewed=lambda h: renewed.append(h.serial_number))
    first = keeper.ensure()
    old_key = (tmp_path / "bot.key").read_bytes()
    start = first.not_before + (first.not_after + dt.timedelta(seconds=1) - first.not_before) * 2 / 3
    clock.at = start - dt.timedelta(seconds=5)
    assert keeper.ensure() == first  # just before the window
    clock.at = start
    second = keeper.ensure()
    assert second.serial_number != first.serial_number
    assert renewed == [first.serial_number, second.serial_number]
    assert (tmp_path / "bot.key").read_bytes() != old_key
    assert key_der(tmp_path / "bot.key") == pub_der(leaf(tmp_path / "bot.crt"))
    assert ca.revoked == [(first.serial_number, "superseded")]
    assert keeper.ensure() == second and ca.certifies() == 2


def test_a_past_window_renews_at_once(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    """A revoked or retiring certificate: ARI's window is in the past."""
    keeper = keeper_for(ca, tmp_path, clock, revoke_replaced=False)
    first = keeper.ensure()
    ca.renew_now.add(first.serial_number)
    clock.advance(hours=6, seconds=1)  # ARI's Retry-After has passed
    second = keeper.ensure()
    assert second.serial_number != first.serial_number and ca.revoked == []


def test_without_ari_it_renews_at_two_thirds_of_the_lifetime(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    first = keeper.ensure()
    ca.ari_fails = problem(503, "not-ready", "down")
    life = first.not_after - first.not_before
    clock.at = first.not_before + life * 0.6
    assert keeper.ensure() == first
    w = keeper.window
    assert w is not None and w.source == "fallback" and w.start == first.not_before + life * 2 / 3
    # ARI is asked again soon (not after 6 h), and a closed port is no different.
    keeper.client = MandateClient(f"http://127.0.0.1:{free_port_closed()}", "mk_x", timeout=2)
    clock.advance(minutes=5, seconds=1)
    assert keeper.ensure() == first
    keeper.client = MandateClient(ca.url, "mk_x", timeout=5)
    clock.at = first.not_before + life * 0.67
    assert keeper.ensure().serial_number != first.serial_number


@pytest.mark.parametrize("answer", [
    (200, {"Content-Type": "application/json"}, b"not json"),
    (200, {"Content-Type": "application/json"}, b'{"suggestedWindow": {"start": "2026-03-02T00:00:00Z"}}'),
    (200, {"Content-Type": "application/json"},
     b'{"suggestedWindow": {"start": "2026-03-02T04:00:00Z", "end": "2026-03-02T03:00:00Z"}}'),  # ends first
    (200, {"Content-Type": "application/json"},
     b'{"suggestedWindow": {"start": "2026-03-09T00:00:00Z", "end": "2026-03-10T00:00:00Z"}}'),  # after expiry
    problem(400, "malformed", "no certificate of this CA has that certID"),
])
def test_an_unusable_ari_answer_falls_back(answer: Answer, ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    first = keeper.ensure()
    ca.ari_fails = answer
    clock.advance(hours=1)
    assert keeper.ensure() == first
    w = keeper.window
    assert w is not None and w.source == "fallback", w


def test_renew_now_marks_only_the_held_certificate(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    first = keeper.ensure()
    assert keeper.renew_now("7f00", "webhook for another certificate") is False
    assert keeper.ensure() == first
    assert keeper.renew_now(first.serial_number.upper(), "webhook certificate.superseded") is True
    second = keeper.ensure()
    assert second != first
    assert keeper.ensure() == second  # the mark was for the old one


# --- failures --------------------------------------------------------------------------------


def test_a_failed_certify_keeps_the_new_key_and_sends_it_again(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    first = keeper.ensure()
    key_before, cert_before = (tmp_path / "bot.key").read_bytes(), (tmp_path / "bot.crt").read_bytes()
    ca.certify_fails = problem(503, "hsm-unavailable", "the HSM did not answer")
    with pytest.raises(CertificationFailed) as e:
        keeper.ensure(force=True)
    assert e.value.retryable and e.value.held == first and isinstance(e.value.error, MandateError)
    assert e.value.error.code == "hsm-unavailable" and keeper.last_error is e.value
    pending = tmp_path / "bot.key.next"
    assert stat.S_IMODE(os.stat(pending).st_mode) == 0o600 and key_der(pending) == ca.csr_keys[-1]
    assert (tmp_path / "bot.key").read_bytes() == key_before  # the working pair is untouched
    assert (tmp_path / "bot.crt").read_bytes() == cert_before
    assert keeper.ensure() == first  # nothing due: the old certificate is still good
    ca.certify_fails = None
    second = keeper.ensure(force=True)
    assert ca.csr_keys[-1] == ca.csr_keys[-2]  # the same pending key, sent again
    assert key_der(tmp_path / "bot.key") == ca.csr_keys[-1] == pub_der(leaf(tmp_path / "bot.crt"))
    assert not pending.exists() and second.serial_number != first.serial_number


def test_a_refusal_without_a_certificate_is_not_retryable(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    ca.certify_fails = problem(409, "mandate-not-approved", "agent keeper-bot has no approved mandate")
    keeper = keeper_for(ca, tmp_path, clock)
    with pytest.raises(CertificationFailed) as e:
        keeper.ensure()
    assert (e.value.retryable, e.value.held, e.value.error.status) == (False, None, 409)
    assert keeper.current is None and not (tmp_path / "bot.crt").exists()
    assert (tmp_path / "bot.key.next").exists()


def test_a_crash_between_the_two_renames_is_finished_from_the_files(
    ca: StubCA, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    first = keeper.ensure()
    real_replace = os.replace

    def crash_on_the_key(src: Any, dst: Any) -> None:
        if str(dst).endswith("bot.key"):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_the_key)
    with pytest.raises(CertificateStoreError) as e:
        keeper.ensure(force=True)
    assert e.value.held == first and "was issued but could not be stored" in str(e.value)
    monkeypatch.setattr(os, "replace", real_replace)
    # The new certificate is complete on disk; its key waits in the pending file.
    new_cert = leaf(tmp_path / "bot.crt")
    assert new_cert.serial_number != int(first.serial_number, 16)
    assert key_der(tmp_path / "bot.key.next") == pub_der(new_cert) != key_der(tmp_path / "bot.key")
    # A fresh keeper (the restarted process) finishes the rename without asking the CA.
    calls = len(ca.server.requests)
    restarted = keeper_for(ca, tmp_path, clock)
    held = restarted.ensure()
    assert held.serial_number == format(new_cert.serial_number, "x")
    assert key_der(tmp_path / "bot.key") == pub_der(new_cert) and not (tmp_path / "bot.key.next").exists()
    assert [p for _, p, _ in ca.server.requests[calls:] if "certify" in p] == []


def test_a_certificate_for_another_key_or_agent_is_replaced_not_revoked(
    ca: StubCA, clock: Clock, tmp_path: Path
) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    keeper.ensure()
    other_key, _ = generate_key_and_csr(AGENT)
    (tmp_path / "bot.key").write_bytes(other_key)  # someone put another key there
    held = keeper.ensure()
    assert key_der(tmp_path / "bot.key") == pub_der(leaf(tmp_path / "bot.crt"))
    assert ca.certifies() == 2 and ca.revoked == [] and keeper.current == held
    # A certificate naming another agent in our file.
    _, csr = generate_key_and_csr("someone-else")
    foreign = ca.sign(x509.load_pem_x509_csr(csr.encode()))
    (tmp_path / "bot.crt").write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    keeper.ensure()
    assert ca.certifies() == 3 and ca.revoked == []
    assert leaf(tmp_path / "bot.crt").subject.rfc4514_string() == f"CN={AGENT}"


def test_an_expired_certificate_is_renewed(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    keeper = keeper_for(ca, tmp_path, clock)
    first = keeper.ensure()
    clock.at = first.not_after + dt.timedelta(seconds=1)
    assert keeper.current is None
    second = keeper.ensure()
    assert second.serial_number != first.serial_number and ca.revoked == []  # nothing valid to revoke


def test_readers_never_see_a_partial_certificate(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    keeper = keeper_for(ca, tmp_path, clock, revoke_replaced=False)
    keeper.ensure()
    stop, bad, reads = threading.Event(), [], [0]

    def reader() -> None:
        while not stop.is_set():
            data = (tmp_path / "bot.crt").read_bytes()
            reads[0] += 1
            if data.count(b"-----END CERTIFICATE-----") != 2:
                bad.append(data)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(15):
            keeper.ensure(force=True)
    finally:
        stop.set()
        t.join()
    assert bad == [] and reads[0] > 0
    assert leftovers(tmp_path) == []


def test_options_are_checked(ca: StubCA, tmp_path: Path) -> None:
    client = MandateClient(ca.url, "mk_x")
    with pytest.raises(ValueError, match="at most one of profile and validity_days"):
        CertificateKeeper(client, AGENT, tmp_path / "k", tmp_path / "c", profile="agent", validity_days=3)
    with pytest.raises(ValueError, match="unknown key type"):
        CertificateKeeper(client, AGENT, tmp_path / "k", tmp_path / "c", key_type="ed25519")
    with pytest.raises(ValueError):
        client.certify(AGENT, "csr", profile="agent", validity_days=3)


def test_key_type_and_validity_days_are_asked_for(ca: StubCA, clock: Clock, tmp_path: Path) -> None:
    keeper = keeper_for(ca, tmp_path, clock, key_type="ec-p384", validity_days=2)
    held = keeper.ensure()
    assert ca.bodies[-1].get("validity_days") == 2 and "profile" not in ca.bodies[-1]
    assert held.profile is None  # the stub, like older daemons, names no profile then
    key = serialization.load_pem_private_key((tmp_path / "bot.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    # A pending key of another type (the configuration changed) is not sent.
    ca.certify_fails = problem(503, "hsm-unavailable", "x")
    with pytest.raises(CertificationFailed):
        keeper.ensure(force=True)
    keeper.key_type = "ec-p256"
    ca.certify_fails = None
    keeper.ensure(force=True)
    key = serialization.load_pem_private_key((tmp_path / "bot.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


# --- in the background -----------------------------------------------------------------------


def test_the_background_thread_renews_in_the_window_and_on_request(tmp_path: Path) -> None:
    """Real time: 4-second certificates, renewed from 2/3 of their life."""
    ca = StubCA(lifetime=dt.timedelta(seconds=4))
    renewed: list[str] = []
    keeper = CertificateKeeper(MandateClient(ca.url, "mk_x", timeout=5), AGENT, tmp_path / "bot.key",
                               tmp_path / "bot.crt", on_renewed=lambda h: renewed.append(h.serial_number),
                               jitter=0.0)
    try:
        with keeper:
            wait_for("three certificates", lambda: len(renewed) >= 3, deadline=20)
            assert keeper.current is not None
            # Told to renew now (a certificate.superseded webhook): at once, not at the window.
            before = len(renewed)
            assert keeper.renew_now(reason="test")
            wait_for("a renewal on request", lambda: len(renewed) > before, deadline=5)
        assert not keeper.running
        assert {s for s, _ in ca.revoked} <= set(renewed[:-1])
    finally:
        ca.close()


def test_the_background_thread_backs_off_and_recovers(tmp_path: Path) -> None:
    ca = StubCA()
    ca.certify_fails = problem(503, "hsm-unavailable", "the HSM did not answer")
    keeper = CertificateKeeper(MandateClient(ca.url, "mk_x", timeout=5), AGENT, tmp_path / "bot.key",
                               tmp_path / "bot.crt", min_backoff=0.2, max_backoff=0.4)
    try:
        keeper.start()
        wait_for("three failed attempts", lambda: keeper.failures >= 3, deadline=10)
        assert keeper.current is None and isinstance(keeper.last_error, CertificationFailed)
        ca.certify_fails = None
        wait_for("a certificate once the CA is back", lambda: keeper.current is not None, deadline=10)
        assert (tmp_path / "bot.key.next").exists() is False
        assert len(set(ca.csr_keys)) == 1  # every attempt sent the same key
    finally:
        keeper.stop()
        ca.close()
    assert not keeper.running


# --- enroll ----------------------------------------------------------------------------------


def test_enroll_saves_the_key_before_certifying(ca: StubCA, tmp_path: Path) -> None:
    client = MandateClient(ca.url, "mk_x")
    key_path = tmp_path / "enrolled.key"
    seen: list[bool] = []
    ca.before_certify = lambda: seen.append(key_path.exists() and key_der(key_path) == ca.csr_keys[-1])
    ca.certify_fails = problem(503, "hsm-unavailable", "down")
    with pytest.raises(MandateError):
        client.enroll(AGENT, key_path=key_path, profile="shortlived")
    assert seen == [True] and stat.S_IMODE(os.stat(key_path).st_mode) == 0o600  # kept
    assert ca.bodies[-1]["profile"] == "shortlived"
    with pytest.raises(FileExistsError):
        client.enroll(AGENT, key_path=key_path)
    assert ca.certifies() == 1  # refused before asking the CA
    # overwrite: the new key waits in .next; a failure leaves the old key where it was.
    old = key_path.read_bytes()
    ca.before_certify = None
    with pytest.raises(MandateError):
        client.enroll(AGENT, key_path=key_path, overwrite=True)
    assert key_path.read_bytes() == old and (tmp_path / "enrolled.key.next").exists()
    ca.certify_fails = None
    e = client.enroll(AGENT, key_path=key_path, overwrite=True)
    assert e.key_path == key_path and key_path.read_bytes() == e.private_key_pem != old
    assert e.certificate.profile is None and not (tmp_path / "enrolled.key.next").exists()
