"""Local key pairs and certificate signing requests, made with ``cryptography``.

The private key never leaves the bot: only the CSR (its public key and the agent's name) is sent
to ``POST /v1/agents/{id}/certify``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = ["KEY_TYPES", "KeyAndCsr", "generate_key_and_csr", "csr_for_key", "key_type_of", "save_private_key"]

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: Key types the CA accepts in a CSR (the same names as ``hsm_key_type``).
KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")


class KeyAndCsr(NamedTuple):
    """A fresh private key (PEM, PKCS#8) and a CSR (PEM) for it; unpacks as a pair."""

    private_key_pem: bytes
    csr_pem: str


def generate_key_and_csr(
    agent_id: str,
    key_type: str = "ec-p256",
    *,
    dns_name: str | None = None,
    passphrase: bytes | None = None,
) -> KeyAndCsr:
    """Generates a key pair of ``key_type`` and a CSR with subject ``CN=<agent_id>``.

    ``dns_name`` (the agent's ``<agent>.<organization>.<agent_domain>``, see
    :attr:`Agent.dns_name`) is requested as a subjectAltName when given; the CA puts the SAN in
    the certificate either way. ``passphrase`` encrypts the returned PEM key.

    The CA accepts ECDSA P-256/P-384 (signed with SHA-256/SHA-384) and RSA 2048-8192 bits
    (PKCS#1 v1.5 with SHA-256); other key types are refused by the daemon.
    """
    if not agent_id:
        raise ValueError("agent_id must not be empty")
    key: _PrivateKey
    if key_type == "ec-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "ec-p384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif key_type.startswith("rsa-") and key_type[4:].isdigit():
        bits = int(key_type[4:])
        if not 2048 <= bits <= 8192:
            raise ValueError(f"RSA keys must have 2048 to 8192 bits, not {bits}")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        raise ValueError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return KeyAndCsr(key_pem, _csr(key, agent_id, dns_name))


def csr_for_key(
    private_key_pem: bytes,
    agent_id: str,
    *,
    dns_name: str | None = None,
    passphrase: bytes | None = None,
) -> str:
    """A CSR (PEM) with subject ``CN=<agent_id>`` for a key that already exists, e.g. one
    saved before certification so that no certificate is ever issued for a key not on disk
    (what :class:`~mandate_client.CertificateKeeper` and :meth:`MandateClient.enroll` do)."""
    if not agent_id:
        raise ValueError("agent_id must not be empty")
    key = serialization.load_pem_private_key(private_key_pem, password=passphrase)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"the CA certifies EC and RSA keys, not {type(key).__name__}")
    return _csr(key, agent_id, dns_name)


def key_type_of(private_key: object) -> str | None:
    """The :data:`KEY_TYPES` name of a ``cryptography`` private or public key (``ec-p256``,
    ``rsa-3072``, …), or ``None`` for a key the CA would not take."""
    if isinstance(private_key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}.get(private_key.curve.name)
    if isinstance(private_key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{private_key.key_size}"
    return None


def _csr(key: _PrivateKey, agent_id: str, dns_name: str | None) -> str:
    # ECDSA P-384 is signed with SHA-384, everything else with SHA-256 (what the CA accepts).
    digest: hashes.SHA256 | hashes.SHA384 = (
        hashes.SHA384()
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
        else hashes.SHA256()
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id)])
    )
    if dns_name:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False
        )
    return builder.sign(key, digest).public_bytes(serialization.Encoding.PEM).decode("ascii")


def save_private_key(path: str | os.PathLike[str], pem: bytes, *, overwrite: bool = False) -> Path:
    """Writes a private key readable by its owner only (mode 0600, created with that mode, so
    it is never briefly readable by others). Refuses to replace an existing file unless
    ``overwrite``; a replacement is written to a temporary file and renamed over the old one."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    dest = target.with_name(f".{target.name}.{os.getpid()}.tmp") if overwrite else target
    fd = os.open(dest, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        if fd >= 0:
            os.close(fd)
        dest.unlink(missing_ok=True)  # created by us (O_EXCL): never someone else's file
        raise
    if overwrite:
        os.replace(dest, target)
    return target
