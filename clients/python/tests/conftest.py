"""Starts the real mandate daemon once per test session, in a fresh data dir on loopback.

The binary is ``$MANDATE_BIN`` (default ``<repo>/target/debug/mandate``, built by cargo; these
tests never build it). The daemon makes its own SoftHSM token and bootstrap admin key; the
fixture makes with it the organization ``ORG`` (legal name ``LEGAL_NAME``, the mandates'
``operator``), two people of it, an operator and a compliance officer, and a key for each.
Its log is appended to every failing test's report.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from helpers import LEGAL_ENTITY, LEGAL_NAME, ORG
from mandate_client import MandateClient, Person

REPO = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO / "target" / "debug" / "mandate"
READY_DEADLINE = 60.0
# The suite's webhook receivers listen on http://127.0.0.1, which the daemon refuses by default.
CONFIG = (
    "[scoring]\nauto_learn = false\nobservation_window_secs = 691200\n"
    "[webhooks]\nallow_http = true\nallow_private_addresses = true\n"
)

#: Daemons running, by the name of the fixture that holds them (for the failure reports).
_running: dict[str, Daemon] = {}

# Loopback never goes through a proxy from the environment (urllib honours http_proxy).
for _var in ("no_proxy", "NO_PROXY"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], deadline: float = 15.0, interval: float = 0.02) -> Any:
    """Polls ``check`` until it returns something truthy; fails after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= end:
            pytest.fail(f"{what}: not within {deadline} s")
        time.sleep(interval)


@dataclass
class Daemon:
    base_url: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    admin: MandateClient
    operator: MandateClient
    compliance: MandateClient
    operator_key_id: str
    compliance_key_id: str
    operator_key: str
    operator_person: str
    compliance_person: str

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def agent_client(self, agent_id: str) -> MandateClient:
        """A client with a new ``agent`` key bound to ``agent_id`` (what a bot holds)."""
        key = self.admin.create_api_key("agent", f"bot {agent_id}", agent_id)
        return self.admin.with_key(key.api_key)

    def client(self, api_key: str | None = None, timeout: float = 10) -> MandateClient:
        return MandateClient(self.base_url, api_key, timeout)

    def person(self, roles: list[str], organization: str | None = ORG, stem: str = "person") -> Person:
        """A new person (``organization=None``: CA staff) with a unique id."""
        pid = f"{stem}-{uuid.uuid4().hex[:8]}"
        return self.admin.create_person(pid, f"Test {pid}", roles, organization=organization)

    def key_of(self, person: str, role: str) -> MandateClient:
        """A client with a new key of ``person`` acting as ``role``."""
        key = self.admin.create_api_key(role, f"python tests: {person} {role}", person=person)
        assert key.person == person and key.api_key
        return self.admin.with_key(key.api_key)


class DaemonExited(Exception):
    """The daemon exited before it was ready (``log`` says why, e.g. a configuration key this
    build does not know)."""

    def __init__(self, returncode: int, log: str) -> None:
        self.returncode = returncode
        self.log = log
        super().__init__(f"mandate exited with {returncode} before ready:\n{log}")


def start_daemon(tmp: Path, extra_config: str = "") -> Daemon:
    """A daemon of its own in ``tmp`` (the suite's ``CONFIG`` plus ``extra_config``, TOML),
    with the organization and people of the session's; stop it with :func:`stop_daemon`.
    Raises :class:`DaemonExited` when it stops before it is ready."""
    binary = Path(os.environ.get("MANDATE_BIN", str(DEFAULT_BIN)))
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"mandate binary not found at {binary}: build it (cargo build) or set MANDATE_BIN")
    config = tmp / "mandate.toml"
    config.write_text(CONFIG + extra_config)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MANDATE_CONFIG", "MANDATE_HSM_PIN", "MANDATE_DATABASE_URL")
    }
    env.update(
        MANDATE_DATA_DIR=str(tmp),
        MANDATE_LISTEN=f"127.0.0.1:{port}",
        MANDATE_LOG=env.get("MANDATE_LOG", "info"),
    )
    log_path = tmp / "daemon.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(binary), "--config", str(config), "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    probe = MandateClient(base, timeout=2)
    deadline = time.monotonic() + READY_DEADLINE
    while not probe.ready():
        if proc.poll() is not None:
            raise DaemonExited(proc.returncode, log_path.read_text(errors="replace"))
        if time.monotonic() >= deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"mandate not ready within {READY_DEADLINE} s:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)
    admin_key = (tmp / "admin.key").read_text().strip()
    admin = MandateClient(base, admin_key)
    admin.create_organization(ORG, LEGAL_NAME, [LEGAL_ENTITY], regulator_id="ESMA-001234")
    admin.create_person("py-operator", "Olga Operator", ["operator"], organization=ORG)
    admin.create_person("py-compliance", "Carl Compliance", ["compliance"], organization=ORG)
    op = admin.create_api_key("operator", "python tests: operator", person="py-operator")
    co = admin.create_api_key("compliance", "python tests: compliance", person="py-compliance")
    assert op.api_key and co.api_key
    return Daemon(
        base, tmp, log_path, proc, admin, admin.with_key(op.api_key), admin.with_key(co.api_key), op.id, co.id,
        op.api_key, "py-operator", "py-compliance",
    )


def stop_daemon(d: Daemon) -> None:
    if d.proc.poll() is None:
        d.proc.terminate()
        try:
            d.proc.wait(20)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    try:
        d = start_daemon(tmp_path_factory.mktemp("mandate"))
    except DaemonExited as e:
        pytest.fail(str(e))
    with daemon_fixture("daemon", d):
        yield d


@contextlib.contextmanager
def daemon_fixture(name: str, d: Daemon) -> Iterator[Daemon]:
    """Holds ``d`` for fixture ``name``: its log goes into the reports of the tests that fail
    using that fixture; stops it at the end."""
    _running[name] = d
    try:
        yield d
    finally:
        del _running[name]
        stop_daemon(d)


@pytest.fixture
def agent_id(request: pytest.FixtureRequest) -> str:
    """A fresh agent id (a DNS label) named after the test."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for name, d in list(_running.items()):
            if name in getattr(item, "fixturenames", ()):
                lines = d.log().splitlines()
                report.sections.append((f"mandate daemon log of {name} (last 150 lines)", "\n".join(lines[-150:])))
