//! A throwaway PostgreSQL cluster for the tests: `initdb` into a temp directory as an
//! unprivileged user (the Debian `postgres` user when the tests run as root, as CI does),
//! `pg_ctl` on a free loopback port with its socket in that directory, one database per test
//! so that tests run in parallel.
//!
//! [`shared`] starts one cluster per test binary; [`Cluster::start`] starts a private one (a
//! test that restarts PostgreSQL must not disturb the others). A cluster is stopped by its
//! PID when dropped, and, since a test binary's statics are never dropped, a small watcher
//! process stops it too once the test binary has exited, however it exited.
//!
//! Without PostgreSQL's binaries `shared()`/`start()` give `None`: the test calls
//! [`skip_or_fail`](super::skip::skip_or_fail) (which fails under `CI=true`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The superuser the tests connect as, over TCP with a password (SCRAM), as a deployment does.
pub const USER: &str = "nhacviec";
pub const PASSWORD: &str = "mat-khau-thu-nghiem";
/// The database that takes TLS connections only (`hostssl` in pg_hba.conf).
pub const TLS_ONLY: &str = "tls_only";

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run PostgreSQL's tools as this user (`None`: as ourselves, not root).
    as_user: Option<&'static str>,
}

/// One database of a cluster, for one test.
#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    pub port: u16,
}

impl Database {
    /// `postgresql://nhacviec@127.0.0.1:PORT/NAME`, without its password, as the YAML has it.
    pub fn url(&self) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{}", self.port, self.name)
    }
}

/// The cluster this test binary shares, started on first use.
pub fn shared() -> Option<&'static Cluster> {
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
    SHARED
        .get_or_init(|| match Cluster::start() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("no PostgreSQL cluster: {e}");
                None
            }
        })
        .as_ref()
}

/// The folder of `initdb` and `pg_ctl`: Debian's newest `/usr/lib/postgresql/*/bin`, else
/// the one `initdb` on `PATH` is in.
pub fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    })
}

fn is_root() -> bool {
    // The tests have no libc binding: `id -u` says it.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Cluster {
    /// `initdb` and `pg_ctl start` in a new temp directory.
    pub fn start() -> Result<Cluster, String> {
        let bin = bin_dir().ok_or("initdb and pg_ctl not found (apt-get install postgresql)")?;
        let as_user = is_root().then_some("postgres");
        let dir = tempfile::Builder::new()
            .prefix("nhacviec-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut c = Cluster {
            dir,
            bin,
            port: 0,
            as_user,
        };
        if let Some(user) = as_user {
            let ok = Command::new("chown")
                .args(["-R", &format!("{user}:"), &c.dir.path().to_string_lossy()])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot chown the cluster's folder to {user}"));
            }
        }
        let pwfile = c.dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).map_err(|e| e.to_string())?;
        if let Some(user) = as_user {
            Command::new("chown")
                .args([&format!("{user}:"), &*pwfile.to_string_lossy()])
                .status()
                .map_err(|e| e.to_string())?;
        }
        c.tool("initdb")
            .args(["-D", &c.data().to_string_lossy(), "-U", USER, "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--auth-local=trust"])
            .args([
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pwfile.to_string_lossy(),
            ])
            .run()?;
        c.enable_tls()?;
        // Another process may take the port between our probe and the bind: try again.
        let mut last = String::new();
        for _ in 0..5 {
            c.port = free_port();
            match c.pg_ctl("start") {
                Ok(()) => {
                    c.watch_parent();
                    return Ok(c);
                }
                Err(e) => last = e,
            }
        }
        Err(format!("pg_ctl start failed: {last}\n{}", c.log()))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// TLS on, with a server certificate for 127.0.0.1 signed by a throwaway CA
    /// ([`ca_file`](Cluster::ca_file)); the database [`TLS_ONLY`] refuses connections without
    /// it, every other database takes both.
    fn enable_tls(&self) -> Result<(), String> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let e = |e: rcgen::Error| e.to_string();
        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).map_err(e)?;
        let key = KeyPair::generate().map_err(e)?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(e)?
            .signed_by(&key, &ca, &ca_key)
            .map_err(e)?;
        let io = |e: std::io::Error| e.to_string();
        std::fs::write(self.ca_file(), ca.pem()).map_err(io)?;
        let data = self.data();
        std::fs::write(data.join("server.crt"), cert.pem()).map_err(io)?;
        std::fs::write(data.join("server.key"), key.serialize_pem()).map_err(io)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(io)?;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .map_err(io)?;
        use std::io::Write as _;
        writeln!(conf, "ssl = on").map_err(io)?;
        let hba = data.join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).map_err(io)?;
        std::fs::write(
            &hba,
            format!(
                "hostssl {TLS_ONLY} all 127.0.0.1/32 scram-sha-256\n\
                 hostnossl {TLS_ONLY} all 127.0.0.1/32 reject\n{rest}"
            ),
        )
        .map_err(io)?;
        if let Some(user) = self.as_user {
            let ok = Command::new("chown")
                .args(["-R", &format!("{user}:"), &*data.to_string_lossy()])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot chown the cluster's data to {user}"));
            }
        }
        Ok(())
    }

    /// The CA that signed the server's certificate, for `ledger: { ca_file }`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The database [`TLS_ONLY`], created on first use: the server refuses it any connection
    /// without TLS.
    pub fn tls_only_database(&self) -> Database {
        if let Err(e) = self
            .tool("createdb")
            .args(["-h", &self.socket_dir().to_string_lossy()])
            .args(["-p", &self.port.to_string(), "-U", USER, TLS_ONLY])
            .run()
        {
            assert!(e.contains("already exists"), "createdb {TLS_ONLY}: {e}");
        }
        Database {
            name: TLS_ONLY.to_string(),
            port: self.port,
        }
    }

    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn tool(&self, name: &str) -> Tool {
        let exe = self.bin.join(name);
        let mut cmd = match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_remove("PGPASSWORD")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGDATABASE");
        Tool(cmd, name.to_string())
    }

    /// `pg_ctl start` or `restart`, waiting until it accepts connections.
    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let opts = format!(
            "-k {} -h 127.0.0.1 -p {} -c fsync=off -c full_page_writes=off -c max_connections=200",
            self.socket_dir().display(),
            self.port
        );
        self.tool("pg_ctl")
            .args(["-D", &self.data().to_string_lossy(), "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-m", "fast", "-o", &opts, action])
            .run()
    }

    /// `pg_ctl restart -m fast`: every connection is cut, then the server is back.
    pub fn restart(&self) {
        self.pg_ctl("restart")
            .unwrap_or_else(|e| panic!("pg_ctl restart: {e}\n{}", self.log()));
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&self) {
        self.tool("pg_ctl")
            .args([
                "-D",
                &self.data().to_string_lossy(),
                "-w",
                "-m",
                "fast",
                "stop",
            ])
            .run()
            .unwrap_or_else(|e| panic!("pg_ctl stop: {e}"));
    }

    /// `pg_ctl start` after [`stop`](Cluster::stop), on the same port.
    pub fn start_again(&self) {
        self.pg_ctl("start")
            .unwrap_or_else(|e| panic!("pg_ctl start: {e}\n{}", self.log()));
    }

    /// The postmaster's PID, from `postmaster.pid`.
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// A new, empty database named after `test` (made unique), owned by [`USER`].
    pub fn database(&self, test: &str) -> Database {
        static N: AtomicUsize = AtomicUsize::new(0);
        let clean: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("t{}_{}", N.fetch_add(1, Ordering::SeqCst), clean);
        self.tool("createdb")
            .args(["-h", &self.socket_dir().to_string_lossy()])
            .args(["-p", &self.port.to_string(), "-U", USER, &name])
            .run()
            .unwrap_or_else(|e| panic!("createdb {name}: {e}"));
        Database {
            name,
            port: self.port,
        }
    }

    /// Runs `sql` in `db` with psql (over the socket) and returns its unaligned output.
    pub fn psql(&self, db: &Database, sql: &str) -> String {
        let out = self
            .tool("psql")
            .args(["-h", &self.socket_dir().to_string_lossy()])
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", &db.name])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .0
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A process that waits for this test binary to exit, then stops the cluster: statics
    /// are never dropped, and a test binary may die of a signal.
    fn watch_parent(&self) {
        let Some(pid) = self.pid() else { return };
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -QUIT {pid} 2>/dev/null; \
             sleep 2; rm -rf '{dir}'",
            me = std::process::id(),
            dir = self.dir.path().display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate shutdown by PID: the data is thrown away with the temp directory.
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline
                && Command::new("kill")
                    .args(["-0", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

struct Tool(Command, String);

impl Tool {
    fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.0.args(args);
        self
    }

    fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.0.arg(arg);
        self
    }

    fn run(mut self) -> Result<(), String> {
        let out = self.0.output().map_err(|e| format!("{}: {e}", self.1))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}): {}{}",
                self.1,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}
