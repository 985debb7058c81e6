//! Test support shared by the store tests, the end-to-end tests and the benchmarks: a real
//! PostgreSQL server started on loopback in a temporary directory (Debian's binaries), and a
//! fresh database per test.
//!
//! The whole suite runs once on SQLite and once on PostgreSQL: `scripts/test.sh` starts one
//! server and exports its URL as `MANDATE_TEST_PG_URL`; [`database_url`] then gives each test a
//! database of its own on it. Tests that stop or restart PostgreSQL start a [`PgServer`] of
//! their own.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod schema;
pub use schema::close_objects;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The environment variable naming the shared test server (an admin URL, e.g.
/// `postgres://postgres@127.0.0.1:54329/postgres`).
pub const PG_URL_ENV: &str = "MANDATE_TEST_PG_URL";

/// The database URL a test should use: a fresh PostgreSQL database when the suite runs on
/// PostgreSQL ([`PG_URL_ENV`] set), otherwise a SQLite file in `dir`.
pub fn database_url(dir: &Path) -> String {
    match std::env::var(PG_URL_ENV) {
        Ok(admin) if !admin.is_empty() => create_database(&admin),
        _ => format!("sqlite://{}", dir.join("mandate.db").display()),
    }
}

/// True when the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(PG_URL_ENV).is_ok_and(|v| !v.is_empty())
}

/// Creates a database with a unique name on the server of `admin_url` and returns its URL.
pub fn create_database(admin_url: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    psql(admin_url, &format!("CREATE DATABASE {name}"));
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("admin URL ends in /DATABASE");
    format!("{base}/{name}")
}

/// A copy of the PostgreSQL database at `url` (no one may be connected to it), on the shared
/// test server; returns its URL.
pub fn copy_database(url: &str) -> String {
    let admin = std::env::var(PG_URL_ENV).expect("the suite runs on PostgreSQL");
    let (base, old) = url.rsplit_once('/').expect("URL ends in /DATABASE");
    let copy = create_database(&admin);
    let (_, name) = copy.rsplit_once('/').expect("URL ends in /DATABASE");
    psql(&admin, &format!("DROP DATABASE {name}"));
    psql(&admin, &format!("CREATE DATABASE {name} TEMPLATE {old}"));
    format!("{base}/{name}")
}

/// Runs one SQL command with `psql`, panicking with its output if it fails.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("psql runs (apt-get install postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PostgreSQL server of its own, on a free loopback port, in a temporary directory; stopped
/// (immediately) when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run the server as the `postgres` user (initdb refuses to run as root).
    as_postgres: bool,
}

impl PgServer {
    /// initdb, then start the server and wait until it accepts connections.
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("mandate-pg-")
            .tempdir()
            .unwrap();
        let as_postgres = is_root();
        let data = dir.path().join("data");
        if as_postgres {
            // The postgres user must reach its data directory.
            run(Command::new("chown").arg("postgres").arg(dir.path()));
            run(Command::new("chmod").arg("0755").arg(dir.path()));
        }
        let mut server = PgServer {
            dir,
            data,
            bin,
            port: free_port(),
            as_postgres,
        };
        let mut initdb = server.command("initdb");
        initdb
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&server.data);
        run(&mut initdb);
        server.start_again();
        server
    }

    /// The URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the (stopped) server again on the same port and data, and waits until it
    /// accepts connections.
    pub fn start_again(&mut self) {
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200",
            self.port
        );
        let mut ctl = self.command("pg_ctl");
        ctl.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &opts, "-w", "-t", "60", "start"]);
        run(&mut ctl);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server: `fast` disconnects clients and shuts down cleanly, `immediate` is
    /// the crash-like stop (recovery at the next start).
    pub fn stop(&self, mode: &str) {
        let mut ctl = self.command("pg_ctl");
        ctl.arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "60", "stop"]);
        run(&mut ctl);
    }

    /// Turns TLS on with this certificate and key (PEM) and restarts the server; plain
    /// connections stay allowed (the client chooses with `sslmode`).
    pub fn enable_tls(&mut self, cert_pem: &str, key_pem: &str) {
        let cert = self.data.join("server.crt");
        let key = self.data.join("server.key");
        // The data directory belongs to the server's user: write through it.
        for (path, text, mode) in [(&cert, cert_pem, "0644"), (&key, key_pem, "0600")] {
            let tmp = self.dir.path().join("tls.tmp");
            std::fs::write(&tmp, text).unwrap();
            // Readable by the server's user for the copy; removed right after.
            run(Command::new("chmod").arg("0644").arg(&tmp));
            let mut cp = self.plain_command("cp");
            cp.arg(&tmp).arg(path);
            run(&mut cp);
            let mut chmod = self.plain_command("chmod");
            chmod.arg(mode).arg(path);
            run(&mut chmod);
            std::fs::remove_file(&tmp).unwrap();
        }
        psql(&self.url("postgres"), "ALTER SYSTEM SET ssl = on");
        self.stop("fast");
        self.start_again();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A system command (not a PostgreSQL binary) as the server's user.
    fn plain_command(&self, program: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        }
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut ctl = self.command("pg_ctl");
        ctl.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = ctl.status();
    }
}

/// Where Debian's PostgreSQL server binaries are (`MANDATE_PG_BIN` overrides).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MANDATE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
