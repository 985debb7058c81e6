#!/usr/bin/env python3
"""OCSP throughput, mandate beside `openssl ocsp` and `cfssl ocspserve`, in one run.

Usage (from the repository root, after `cargo build --release -p mandate-ca --bins`):

    python3 scripts/bench_ocsp_compare.py [CERTS] [SECONDS] [CONNECTIONS]

Defaults: 1000 certificates, 8 s per wrk run, 32 connections, wrk with one thread.

What it does:
1. Starts the release `mandate serve` on a fresh data dir (SQLite, SoftHSM dev token, P-256
   intermediate), registers and approves one agent and issues CERTS certificates for it.
2. Starts the stand-alone `mandate-ocsp` on the same store and waits until the daemon has
   pre-signed a response for every certificate.
3. Gives the other two responders the same certificates:
   - `cfssl ocspserve` serves the same pre-signed SHA-1 responses, read from a responses file;
   - `openssl ocsp` runs as a responder (`-multi 2`, one process per core) with an index.txt
     listing the same serials and signs every response itself with a P-256 key in a file
     (self-signed responder certificate: wrk does not verify, and openssl cannot use our HSM).
4. For every responder and request kind (GET, POST, POST with a nonce), checks one answer is a
   successful OCSP response saying good, then runs wrk with a Lua script that cycles through the
   CERTS different requests, and prints requests/s and latency percentiles as a Markdown table.

Needs: wrk, openssl, cfssl (Debian golang-cfssl), python3 with `cryptography`.
"""

import base64
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
MANDATE = os.path.join(TARGET, "release", "mandate")
MANDATE_OCSP = os.path.join(TARGET, "release", "mandate-ocsp")
PORTS = {"daemon": 18281, "standalone": 18282, "cfssl": 18283, "openssl": 18284}


def http(method, url, key=None, body=None, ctype="application/json"):
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = ctype
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def wait(what, check, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError) as e:
            if os.environ.get("DEBUG"):
                print(f"{what}: {e!r}", file=sys.stderr)
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)


def ready(url):
    return lambda: http("GET", url)[0] == 200


def lua_script(path, method, target, requests):
    """A wrk script cycling through `requests` (DER), as GET paths or POST bodies."""
    lines = []
    for der in requests:
        if method == "GET":
            b64 = base64.b64encode(der).decode()
            lines.append(target + b64.replace("/", "%2F").replace("+", "%2B"))
        else:
            lines.append(der.hex())
    data = path + ".txt"
    with open(data, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(path, "w") as f:
        f.write(
            f"""
local reqs = {{}}
local i = 0
function init(args)
  for line in io.lines("{data}") do
    if "{method}" == "GET" then
      table.insert(reqs, wrk.format("GET", line))
    else
      local body = line:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
      table.insert(reqs, wrk.format("POST", "{target}",
        {{["Content-Type"] = "application/ocsp-request"}}, body))
    end
  end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
"""
        )


def parse_wrk(out):
    def latency(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else ""),
    }


def check_answer(resp_der, nonce):
    """'good' (+ whether the nonce was echoed), or what went wrong."""
    try:
        r = ocsp.load_der_ocsp_response(resp_der)
    except ValueError as e:
        return f"unparseable: {e}"
    if r.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return r.response_status.name
    status = r.certificate_status.name.lower()
    if nonce is None:
        return status
    try:
        echoed = r.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    except x509.ExtensionNotFound:
        echoed = False
    return f"{status}, nonce {'echoed' if echoed else 'not echoed'}"


def main():
    certs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    for tool in ("wrk", "openssl", "cfssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install wrk openssl golang-cfssl)")
    for binary in (MANDATE, MANDATE_OCSP):
        if not os.path.exists(binary):
            sys.exit(f"{binary} missing: cargo build --release -p mandate-ca --bins")

    work = tempfile.mkdtemp(prefix="ocsp-compare-")
    procs = []
    env = dict(os.environ, MANDATE_DATA_DIR=work, MANDATE_LOG="warn")
    env.pop("MANDATE_CONFIG", None)
    log = open(os.path.join(work, "servers.log"), "w")

    def start(cmd, **kw):
        # A process group of its own, so all of it (openssl -multi forks) is stopped.
        p = subprocess.Popen(cmd, stdout=log, stderr=log, process_group=0, **kw)
        procs.append(p)
        return p

    try:
        base = f"http://127.0.0.1:{PORTS['daemon']}"
        conf = os.path.join(work, "mandate.toml")
        with open(conf, "w") as f:
            f.write("[http]\nrate_limit_per_minute = 0\n")  # one key issues every certificate
        env["MANDATE_CONFIG"] = conf
        start([MANDATE, "serve"], env=dict(env, MANDATE_LISTEN=f"127.0.0.1:{PORTS['daemon']}"))
        wait("the daemon", ready(base + "/readyz"))
        admin = open(os.path.join(work, "admin.key")).read().strip()

        http("POST", base + "/v1/organizations", admin, {"id": "bench", "legal_name": "Bench Ltd"})

        def key(role):
            http("POST", base + "/v1/people", admin,
                 {"id": role, "name": role, "organization": "bench", "roles": [role]})
            _, b = http("POST", base + "/v1/api-keys", admin,
                        {"role": role, "label": role, "person": role})
            return json.loads(b)["api_key"]

        operator, compliance = key("operator"), key("compliance")
        http("POST", base + "/v1/agents", operator, {
            "agent_id": "cmp-bot", "name": "cmp-bot", "organization": "bench",
            "mandate": {"operator": "Bench Ltd", "allowedMarkets": ["EUR_USD"]}})
        http("POST", base + "/v1/agents/cmp-bot/approve", compliance, {})
        subprocess.run(
            ["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-subj", "/CN=cmp-bot",
             "-keyout", os.path.join(work, "bot.key"), "-out", os.path.join(work, "bot.csr")],
            check=True, capture_output=True)
        csr = open(os.path.join(work, "bot.csr")).read()
        issued = []
        for _ in range(certs):
            _, b = http("POST", base + "/v1/agents/cmp-bot/certify", operator, {"csr": csr})
            issued.append(json.loads(b))
        print(f"issued {len(issued)} certificates", file=sys.stderr)
        _, int_pem = http("GET", base + "/ca/intermediate.pem")
        int_path = os.path.join(work, "int.pem")
        open(int_path, "wb").write(int_pem)
        issuer = x509.load_pem_x509_certificate(int_pem)
        leaves = [x509.load_pem_x509_certificate(c["certificate_pem"].encode()) for c in issued]

        sa = f"http://127.0.0.1:{PORTS['standalone']}"
        start([MANDATE_OCSP], env=dict(env, MANDATE_LISTEN=f"127.0.0.1:{PORTS['standalone']}"))
        wait("the stand-alone responder", ready(sa + "/readyz"))
        db = sqlite3.connect(os.path.join(work, "mandate.db"))

        def presigned():
            n = db.execute("SELECT count(*) FROM ocsp_responses WHERE hash = 'sha1'").fetchone()[0]
            return n >= certs

        wait("pre-signed responses", presigned, 120)

        # cfssl: the same pre-signed SHA-1 responses.
        responses = os.path.join(work, "responses.b64")
        with open(responses, "w") as f:
            for (der,) in db.execute("SELECT der FROM ocsp_responses WHERE hash = 'sha1'"):
                f.write(base64.b64encode(der).decode() + "\n")
        start(["cfssl", "ocspserve", "-address", "127.0.0.1", "-port", str(PORTS["cfssl"]),
               "-responses", responses, "-loglevel", "5"])

        # openssl: an index of the same serials, and a P-256 responder key in a file.
        index = os.path.join(work, "index.txt")
        with open(index, "w") as f:
            for c in leaves:
                na = c.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
                f.write(f"V\t{na}\t\t{c.serial_number:X}\tunknown\t/CN=cmp-bot\n")
        with open(index + ".attr", "w") as f:
            f.write("unique_subject = no\n")  # every certificate has the agent's subject
        rkey, rcert = os.path.join(work, "rsp.key"), os.path.join(work, "rsp.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-subj", "/CN=bench OCSP responder", "-days", "2",
             "-keyout", rkey, "-out", rcert], check=True, capture_output=True)
        def openssl_responder(port):
            return start(["openssl", "ocsp", "-index", index, "-port", str(port), "-rsigner", rcert,
                          "-rkey", rkey, "-CA", int_path, "-nmin", "60", "-multi", "2",
                          "-ignore_err"])

        targets = {
            "mandate (embedded)": (f"{base}/ocsp", "/ocsp/"),
            "mandate-ocsp (stand-alone)": (f"{sa}/ocsp", "/ocsp/"),
            "cfssl ocspserve": (f"http://127.0.0.1:{PORTS['cfssl']}/", "/"),
            "openssl ocsp": (f"http://127.0.0.1:{PORTS['openssl']}/", "/"),
        }

        def request(cert, nonce):
            b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
            if nonce is not None:
                b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
            return b.build().public_bytes(serialization.Encoding.DER)

        plain = [request(c, None) for c in leaves]
        nonces = [os.urandom(16) for _ in leaves]
        with_nonce = [request(c, n) for c, n in zip(leaves, nonces)]

        def answers(url):
            # A real request: a bare TCP probe can leave openssl's responder stuck on it.
            req = urllib.request.Request(url, data=plain[0], method="POST",
                                         headers={"Content-Type": "application/ocsp-request"})
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status == 200

        for name, (url, _) in targets.items():
            if name != "openssl ocsp":
                wait(name, lambda u=url: answers(u), 30)

        rows = []
        for name, (url, prefix) in targets.items():
            host = url.split("/")[2]
            for n, kind in enumerate(("GET", "POST", "POST + nonce")):
                reqs = with_nonce if kind == "POST + nonce" else plain
                responder = None
                if name == "openssl ocsp":
                    # Fresh processes for every run: after wrk's connections close, openssl
                    # 3.0's responder was seen to hang on the next request.
                    host = f"127.0.0.1:{PORTS['openssl'] + 10 * n}"
                    url = f"http://{host}/"
                    responder = openssl_responder(PORTS["openssl"] + 10 * n)
                    wait(name, lambda u=url: answers(u), 30)
                # One answer checked first: a successful response saying good?
                try:
                    if kind == "GET":
                        b64 = base64.b64encode(reqs[0]).decode()
                        b64 = b64.replace("/", "%2F").replace("+", "%2B")
                        _, body = http("GET", f"http://{host}{prefix}{b64}")
                    else:
                        _, body = http("POST", url, body=reqs[0], ctype="application/ocsp-request")
                    answer = check_answer(body, nonces[0] if kind == "POST + nonce" else None)
                except urllib.error.HTTPError as e:
                    answer = f"HTTP {e.code}, {len(e.read())}-byte body"
                if answer.startswith("good"):
                    script = os.path.join(work, f"{len(rows)}.lua")
                    lua_script(script, kind.split()[0],
                               prefix if kind == "GET" else url.split(host, 1)[1], reqs)
                    out = subprocess.run(
                        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script,
                         f"http://{host}/"], capture_output=True, text=True).stdout
                    r = parse_wrk(out)
                else:
                    # Not served correctly: no load run (its speed would mean nothing).
                    r = {"rps": 0.0, "p50": None, "p99": None, "errors": "not measured"}
                if responder is not None:
                    os.killpg(responder.pid, signal.SIGTERM)
                    responder.wait(timeout=20)
                    procs.remove(responder)
                rows.append((name, kind, answer, r))
                print(f"{name:28} {kind:13} {answer:28} {r['rps']:>10.0f} req/s "
                      f"p50 {r['p50']} ms p99 {r['p99']} ms {r['errors']}", file=sys.stderr)

        print(f"\n{certs} certificates, wrk -t1 -c{conns} -d{seconds}s, requests cycling over all of them\n")
        print("| responder | request | answer checked | requests/s | p50 | p99 | errors |")
        print("|---|---|---|---|---|---|---|")
        for name, kind, answer, r in rows:
            p50 = f"{r['p50']:.2f} ms" if r["p50"] is not None else "-"
            p99 = f"{r['p99']:.2f} ms" if r["p99"] is not None else "-"
            print(f"| {name} | {kind} | {answer} | {r['rps']:,.0f} | {p50} | {p99} | {r['errors'].strip() or '-'} |")
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
