#!/usr/bin/env python3
"""Checks that the end-to-end suite saw every documented operation answer both ways.

Usage: scripts/contract_coverage.py DOCUMENT.json HITS

HITS is the file the suite appends `method template status` to for every answer it checked
against the document (MANDATE_CONTRACT_HITS, see tests/e2e/contract.rs). Every operation must
have been seen succeeding (a status below 400), and every operation that documents a refusal
(a 4xx answer) refusing. Prints the count and the gaps; exits 1 on a gap.
"""
import json
import sys
from collections import defaultdict


def main():
    doc = json.load(open(sys.argv[1]))
    seen = defaultdict(set)
    for line in open(sys.argv[2]):
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            seen[(parts[0], parts[1])].add(int(parts[2]))
    gaps = []
    operations = both = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            operations += 1
            statuses = seen.get((method, path), set())
            refusal_documented = any(k.startswith("4") for k in op.get("responses", {}))
            ok = any(s < 400 for s in statuses)
            refused = any(400 <= s < 500 for s in statuses)
            if not ok:
                gaps.append(f"{method.upper()} {path}: never seen succeeding (saw {sorted(statuses)})")
            if refusal_documented and not refused:
                gaps.append(f"{method.upper()} {path}: never seen refusing (saw {sorted(statuses)})")
            if ok and (refused or not refusal_documented):
                both += 1
    print(f"response validation: {operations} documented operations, {both} seen answering as documented both ways")
    for g in gaps:
        print("  " + g)
    sys.exit(1 if gaps else 0)


if __name__ == "__main__":
    main()
