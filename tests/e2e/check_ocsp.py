"""Independent check of an OCSP response with python `cryptography`: parse it, verify its
signature with the issuer's public key, and print what it says as JSON."""
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

resp = ocsp.load_der_ocsp_response(open(sys.argv[1], "rb").read())
issuer = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
out = {"response_status": resp.response_status.name}
if resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
    def verify(key, signature, data, hash_alg):
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hash_alg))
        else:
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)

    # A delegated signer must be certified by the issuer for OCSP signing (RFC 6960 4.2.2.2).
    delegated = len(resp.certificates) > 0
    if delegated:
        signer = resp.certificates[0]
        verify(issuer.public_key(), signer.signature, signer.tbs_certificate_bytes,
               signer.signature_hash_algorithm)
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku, "signer lacks id-kp-OCSPSigning"
        signer.extensions.get_extension_for_class(x509.OCSPNoCheck)
        key = signer.public_key()
    else:
        key = issuer.public_key()
    verify(key, resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm)
    out["delegated"] = delegated
    nonce = None
    for ext in resp.extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            nonce = ext.value.nonce.hex()
    out.update({
        "signature_verified": True,
        "cert_status": resp.certificate_status.name,
        "serial": format(resp.serial_number, "x"),
        "revocation_reason": resp.revocation_reason.name if resp.revocation_reason else None,
        "responder_key_hash": resp.responder_key_hash.hex() if resp.responder_key_hash else None,
        "hash_algorithm": resp.hash_algorithm.name,
        "has_next_update": resp.next_update_utc is not None,
        "nonce": nonce,
    })
print(json.dumps(out))
