#!/usr/bin/env python3
"""Makes store/tests/fixtures/before-organizations.db (SQLite) and, given a PostgreSQL URL,
before-organizations.pg.sql (a pg_dump): databases written by a release before organizations
and people (migration 0015), for the upgrade test in store/tests/upgrade.rs.

Usage: scripts/make_upgrade_fixture.py OLD_MANDATE_BINARY [POSTGRES_URL_OF_AN_EMPTY_DATABASE]
(build it from the last commit before 0015, e.g. `git worktree add /tmp/old 032cbe1 &&
cd /tmp/old && cargo build -p mandate-ca --bin mandate`). Needs SoftHSM2 and openssl.

What it writes, with the old API: two firms' agents (org-a: registered by op-a, approved by
comp-a, certified, one certificate revoked; org-b: registered by op-b, approved by comp-b), an
auditor key, an operator key that never acted, an agent key and a revoked operator key.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "store", "tests", "fixtures")
OUT = os.path.join(FIXTURES, "before-organizations.db")
PG_OUT = os.path.join(FIXTURES, "before-organizations.pg.sql")


def main() -> None:
    binary = sys.argv[1]
    pg_url = sys.argv[2] if len(sys.argv) > 2 else None
    work = tempfile.mkdtemp()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(os.environ, MANDATE_DATA_DIR=work, MANDATE_LISTEN=f"127.0.0.1:{port}",
               MANDATE_LOG="warn")
    env.pop("MANDATE_CONFIG", None)
    env.pop("MANDATE_DATABASE_URL", None)
    if pg_url:
        env["MANDATE_DATABASE_URL"] = pg_url
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("daemon not ready")
                time.sleep(0.1)
        admin = open(os.path.join(work, "admin.key")).read().strip()

        def call(key, path, body=None):
            req = urllib.request.Request(base + path, method="POST" if body is not None else "GET",
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {key}",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"null")

        def key(role, label, agent=None):
            body = {"role": role, "label": label}
            if agent:
                body["agent_id"] = agent
            return call(admin, "/v1/api-keys", body)

        op_a, comp_a = key("operator", "Olivia (desk A)"), key("compliance", "Carl (compliance A)")
        op_b, comp_b = key("operator", "Otto (desk B)"), key("compliance", "Clara (compliance B)")
        key("auditor", "Audrey (auditor)")
        key("operator", "Idle operator")
        gone = key("operator", "Former operator")
        call(admin, f"/v1/api-keys/{gone['id']}/revoke", {})
        for agent, org, legal, op, comp in (("a-bot", "org-a", "Alpha Trading AG", op_a, comp_a),
                                            ("b-bot", "org-b", "Beta Capital Ltd", op_b, comp_b)):
            call(op["api_key"], "/v1/agents", {
                "agent_id": agent, "name": agent, "organization": org,
                "mandate": {"operator": legal, "allowedMarkets": ["EUR_USD"]}})
            call(comp["api_key"], f"/v1/agents/{agent}/approve", {})
        call(op_a["api_key"], "/v1/agents/a-bot/mandate",
             {"mandate": {"operator": "Alpha Trading Europe SA", "allowedMarkets": ["EUR_USD"]}})
        call(comp_a["api_key"], "/v1/agents/a-bot/approve", {})
        key("agent", "a-bot's own", "a-bot")
        csr = subprocess.run(
            ["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-keyout", os.path.join(work, "k.pem"), "-subj",
             "/CN=a-bot"], capture_output=True, check=True, text=True).stdout
        cert = call(op_a["api_key"], "/v1/agents/a-bot/certify", {"csr": csr})
        call(op_a["api_key"], f"/v1/certificates/{cert['serial_number']}/revoke",
             {"reason": "superseded"})
    finally:
        proc.terminate()
        proc.wait(30)
    if pg_url:
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--no-comments", "--inserts", pg_url],
            capture_output=True, check=True, text=True).stdout
        with open(PG_OUT, "w") as f:
            f.write("-- A database of the release before organizations and people, made by\n"
                    "-- scripts/make_upgrade_fixture.py with pg_dump. Load with psql -f.\n")
            f.write(dump)
        shutil.rmtree(work, ignore_errors=True)
        print(os.path.abspath(PG_OUT))
        return
    # One self-contained file: fold the WAL into it.
    import sqlite3
    db = sqlite3.connect(os.path.join(work, "mandate.db"))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM INTO ?", (os.path.abspath(OUT) + ".tmp",))
    db.close()
    os.replace(os.path.abspath(OUT) + ".tmp", os.path.abspath(OUT))
    shutil.rmtree(work, ignore_errors=True)
    print(os.path.abspath(OUT))


if __name__ == "__main__":
    main()
