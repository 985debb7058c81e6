#!/usr/bin/env python3
"""Compares two API documents operation by operation: e.g. the one a change generates with
the one before it (`mandate openapi` at each commit), to review what a change does to the API.

Usage: scripts/openapi_compare.py BEFORE.json AFTER.json [PATH_PREFIX...]

For every operation of AFTER (or those under the prefixes) prints what differs from BEFORE:
operationId, summary, tags, security, parameters (name, in, required), request body media
types, response statuses and media types, and for each JSON schema (refs resolved) the
property names, required lists, types, enums and bounds, recursively. It served to hold each
operation to the hand-written document when the document became generated from the code.
"""
import json
import sys


def resolve(doc, s, depth=0):
    while isinstance(s, dict) and "$ref" in s and depth < 20:
        name = s["$ref"].split("/")[-1]
        section = s["$ref"].split("/")[-2]
        s = doc["components"][section].get(name, {})
        depth += 1
    return s


def types(s):
    t = s.get("type")
    if isinstance(t, str):
        t = [t]
    return sorted(t or [])


def cmp_schema(w, g, wd, gd, where, out, depth=0):
    if depth > 8:
        return
    w, g = resolve(wd, w), resolve(gd, g)
    if not isinstance(w, dict) or not isinstance(g, dict):
        return
    for key in ("oneOf", "anyOf", "allOf"):
        if (key in w) != (key in g):
            out.append(f"{where}: {key} written={key in w} generated={key in g}")
    tw, tg = types(w), types(g)
    if tw and tg and tw != tg:
        out.append(f"{where}: type {tw} vs {tg}")
    if sorted(map(str, w.get("enum", []))) != sorted(map(str, g.get("enum", []))):
        out.append(f"{where}: enum {w.get('enum')} vs {g.get('enum')}")
    for c in ("pattern", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "format"):
        if c in w and w.get(c) != g.get(c) and not (c == "format" and g.get(c) in ("int32", "int64", "double")):
            out.append(f"{where}: {c} {w.get(c)!r} vs {g.get(c)!r}")
    pw, pg = w.get("properties", {}), g.get("properties", {})
    if pw or pg:
        if set(pw) != set(pg):
            out.append(f"{where}: properties only written {sorted(set(pw) - set(pg))}, only generated {sorted(set(pg) - set(pw))}")
        if sorted(w.get("required", [])) != sorted(g.get("required", [])):
            out.append(f"{where}: required {sorted(w.get('required', []))} vs {sorted(g.get('required', []))}")
        if w.get("additionalProperties") != g.get("additionalProperties"):
            out.append(f"{where}: additionalProperties {w.get('additionalProperties')} vs {g.get('additionalProperties')}")
        for k in set(pw) & set(pg):
            cmp_schema(pw[k], pg[k], wd, gd, f"{where}.{k}", out, depth + 1)
    if "items" in w or "items" in g:
        cmp_schema(w.get("items", {}), g.get("items", {}), wd, gd, f"{where}[]", out, depth + 1)


def main():
    wd = json.load(open(sys.argv[1]))
    gd = json.load(open(sys.argv[2]))
    prefixes = sys.argv[3:]
    for path, item in gd["paths"].items():
        if prefixes and not any(path.startswith(p) for p in prefixes):
            continue
        for method, g in item.items():
            w = wd["paths"].get(path, {}).get(method)
            name = f"{method.upper()} {path}"
            if w is None:
                print(f"{name}: not in the written document")
                continue
            out = []
            for k in ("operationId", "summary", "tags", "security"):
                if w.get(k) != g.get(k):
                    out.append(f"{k}: {w.get(k)!r} vs {g.get(k)!r}")
            if w.get("description") != g.get("description"):
                out.append("description differs")
            pw = {(p.get("name"), p.get("in"), bool(p.get("required"))) for p in map(lambda p: resolve(wd, p), w.get("parameters", []))}
            pg = {(p.get("name"), p.get("in"), bool(p.get("required"))) for p in map(lambda p: resolve(gd, p), g.get("parameters", []))}
            if pw != pg:
                out.append(f"parameters only written {sorted(pw - pg)}, only generated {sorted(pg - pw)}")
            bw = w.get("requestBody", {}).get("content", {})
            bg = g.get("requestBody", {}).get("content", {})
            if set(bw) != set(bg):
                out.append(f"request media {sorted(bw)} vs {sorted(bg)}")
            for mt in set(bw) & set(bg):
                cmp_schema(bw[mt].get("schema", {}), bg[mt].get("schema", {}), wd, gd, f"request {mt}", out)
            rw, rg = w.get("responses", {}), g.get("responses", {})
            if set(rw) != set(rg):
                out.append(f"statuses {sorted(rw)} vs {sorted(rg)}")
            for st in set(rw) & set(rg):
                cw = resolve(wd, rw[st]).get("content", {})
                cg = resolve(gd, rg[st]).get("content", {})
                if set(cw) != set(cg):
                    out.append(f"{st} media {sorted(cw)} vs {sorted(cg)}")
                for mt in set(cw) & set(cg):
                    cmp_schema(cw[mt].get("schema", {}), cg[mt].get("schema", {}), wd, gd, f"{st} {mt}", out)
            has_example = any("example" in m for r in rg.values() for m in resolve(gd, r).get("content", {}).values())
            if not has_example:
                out.append("no example on any answer")
            print(f"{name}: " + ("same" if not out else "\n  " + "\n  ".join(out)))


if __name__ == "__main__":
    main()
