"""Independent parse of an agent certificate with python `cryptography`.

Prints JSON: subject, SAN, key usage, EKU, AIA, CRL DP and the raw mandate extension (hex), so the
Rust test can compare them with what it asked for without trusting our own DER code for the
certificate structure.
"""
import json
import sys

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID, AuthorityInformationAccessOID

MANDATE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1.1")

cert = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
exts = cert.extensions
ku = exts.get_extension_for_oid(ExtensionOID.KEY_USAGE)
eku = exts.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
san = exts.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
aia = exts.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
crl = exts.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS)
ski = exts.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
aki = exts.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
mandate = exts.get_extension_for_oid(MANDATE_OID)

print(json.dumps({
    "version": cert.version.name,
    "serial": format(cert.serial_number, "x"),
    "cn": cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
    "o": cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value,
    "validity_days": (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400,
    "key_usage_critical": ku.critical,
    "digital_signature": ku.value.digital_signature,
    "key_cert_sign": ku.value.key_cert_sign,
    "eku": [o.dotted_string for o in eku.value],
    "san_dns": san.value.get_values_for_type(x509.DNSName),
    "ocsp": [d.access_location.value for d in aia.value
             if d.access_method == AuthorityInformationAccessOID.OCSP],
    "ca_issuers": [d.access_location.value for d in aia.value
                   if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS],
    "crl": [n.value for dp in crl.value for n in dp.full_name],
    "ski": ski.value.digest.hex(),
    "aki": aki.value.key_identifier.hex(),
    "mandate_critical": mandate.critical,
    "mandate_der_hex": mandate.value.value.hex(),
}))
