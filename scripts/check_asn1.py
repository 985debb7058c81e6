#!/usr/bin/env python3
"""Checks the mandate extension's ASN.1 module (docs/mandate-extension.asn1) against the DER
the policy crate writes, with an independent ASN.1 compiler (asn1tools): every seed of the
mandate fuzz target (fuzz/seeds/mandate_der/, versions 1 and 2, made by `Mandate::to_der` and
pinned by the policy tests) decodes under the module and encodes back to the same bytes, and the
version-2 seed holds the values the policy test put in it."""

import pathlib
import sys

import asn1tools

root = pathlib.Path(__file__).resolve().parent.parent
spec = asn1tools.compile_files(str(root / "docs/mandate-extension.asn1"), "der")
seeds = sorted((root / "fuzz/seeds/mandate_der").glob("*.der"))
if not seeds:
    sys.exit("check_asn1: no seeds")
versions = set()
for seed in seeds:
    der = seed.read_bytes()
    value = spec.decode("Mandate", der)
    if spec.encode("Mandate", value) != der:
        sys.exit(f"check_asn1: {seed.name} does not re-encode to the same DER under the module")
    versions.add(value["version"])
v2 = spec.decode("Mandate", (root / "fuzz/seeds/mandate_der/full-v2.der").read_bytes())
c = v2["controls"]
expect = {
    "maxOrderQuantity": {"value": "2.5", "soft": False},
    "priceCollar": {"buyBps": 150, "sellBps": 200, "soft": True},
    "referencePriceMaxAge": 5,
    "maxNetPosition": {"quantity": "10", "soft": False},
    "maxMessagesPerSecond": {"value": 50, "soft": True},
    "allowedOrderTypes": ["limit", "stopLimit"],
    "shortSellingAllowed": False,
}
for key, want in expect.items():
    if c.get(key) != want:
        sys.exit(f"check_asn1: full-v2.der controls.{key} is {c.get(key)!r}, expected {want!r}")
market = v2["marketControls"][0]
if market["market"] != "BTC_EUR" or market["controls"]["maxOrderQuantity"]["value"] != "0.5":
    sys.exit(f"check_asn1: full-v2.der marketControls is {v2['marketControls']!r}")
if versions != {1, 2}:
    sys.exit(f"check_asn1: seeds cover versions {sorted(versions)}, expected 1 and 2")
print(f"check_asn1: {len(seeds)} DER seeds (versions 1 and 2) decode and re-encode under the module")
