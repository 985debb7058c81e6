#!/usr/bin/env python3
"""Checks the daemon's layering (docs/ARCHITECTURE.md): exits 1, naming each offence, if

- a module of the web adapters (ca/src/http/**, ca/src/acme/** but for the pure protocol
  helpers listed below) calls one of the store's write methods: every write goes through the
  registration authority (ca/src/ra/**) or the CA core it calls;
- a module of the registration authority or the core imports the web adapters (crate::http,
  crate::acme::server): arrows point one way, adapters -> RA -> core.

The store's write methods are found, not listed: every `pub async fn` of store/src whose body
hands work to the writer (`self.writer`) or calls another write method of the store.

Run by scripts/test.sh; `python3 scripts/check_layers.py` on its own prints what it checked.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
STORE = os.path.join(ROOT, "store", "src")
CA = os.path.join(ROOT, "ca", "src")
# Adapters: their modules may read the store but not write it.
ADAPTERS = [os.path.join(CA, "http"), os.path.join(CA, "acme")]
# The composition root wires adapters to the core; it may name both.
ROOTS = {os.path.join(CA, f) for f in ("lib.rs", "main.rs", "node.rs")}
WEB_IMPORT = re.compile(r"\b(crate|super)::(http|acme::server)\b")


def rust_files(d):
    for base, _, files in os.walk(d):
        for f in files:
            if f.endswith(".rs"):
                yield os.path.join(base, f)


def functions(text):
    """(name, body) of each `pub async fn` of an impl, by brace matching."""
    for m in re.finditer(r"pub async fn (\w+)\s*[(<]", text):
        start = text.index("{", m.end())
        # Skip the `where`/return type: the body's brace is the first at depth 0 after `)`.
        depth, i = 0, start
        while i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        yield m.group(1), text[start:i]


def store_writes():
    bodies = {}
    for path in rust_files(STORE):
        with open(path) as f:
            for name, body in functions(f.read()):
                bodies[name] = body
    writes = {n for n, b in bodies.items() if re.search(r"self\s*\.writer", b)}
    grew = True
    while grew:
        grew = False
        for n, b in bodies.items():
            if n not in writes and any(re.search(rf"\.{w}\(", b) for w in writes):
                writes.add(n)
                grew = True
    return writes


def main():
    writes = store_writes()
    if len(writes) < 20:
        print(f"check_layers: found only {len(writes)} store write methods; the finder broke")
        return 1
    offences = []
    for d in ADAPTERS:
        for path in rust_files(d):
            with open(path) as f:
                for no, line in enumerate(f, 1):
                    code = line.split("//", 1)[0]
                    for w in writes:
                        if re.search(rf"\.{w}\s*\(", code):
                            offences.append(f"{os.path.relpath(path, ROOT)}:{no}: the adapter "
                                            f"calls the store's write method {w}()")
    for path in rust_files(CA):
        if path in ROOTS or any(path.startswith(d + os.sep) for d in ADAPTERS):
            continue
        with open(path) as f:
            for no, line in enumerate(f, 1):
                code = line.split("//", 1)[0]
                if WEB_IMPORT.search(code):
                    offences.append(f"{os.path.relpath(path, ROOT)}:{no}: domain code imports "
                                    f"the web layer: {code.strip()}")
    for o in offences:
        print(o)
    print(f"check_layers: {len(writes)} store write methods, {len(offences)} offence(s)")
    return 1 if offences else 0


if __name__ == "__main__":
    sys.exit(main())
