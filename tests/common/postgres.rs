//! A throwaway PostgreSQL cluster for the tests that need real dumps: `initdb` in a temporary
//! directory, the server started with `pg_ctl` listening on a unix socket in that directory
//! (and, with [`Cluster::create_on_loopback`], on 127.0.0.1 at a free port), run as
//! `postgres` when the tests run as root (the server refuses root), stopped when the
//! [`Running`] guard drops (panics included) and removed with the directory.
//!
//! Client programs run through [`Cluster::command`] get the cluster's connection settings
//! and none of the caller's `PG*` variables, so a developer's shell cannot point them
//! elsewhere.

#![allow(dead_code)] // each test crate uses its own subset

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs every cluster needs.
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "psql"];

/// The superuser `initdb` creates; every connection uses it (trust authentication).
pub const SUPERUSER: &str = "postgres";

/// The newest PostgreSQL bin directory with `initdb`, `pg_ctl`, `psql` and every one of
/// `programs`: under `/usr/lib/postgresql/*/bin` (Debian, Ubuntu) or `pg_config --bindir`.
pub fn find_bin(programs: &[&str]) -> Option<PathBuf> {
    let complete = |d: &Path| {
        SERVER_PROGRAMS
            .iter()
            .chain(programs)
            .all(|p| d.join(p).is_file())
    };
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.into_iter().rev().find(|(_, d)| complete(d)) {
        return Some(d);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let d = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    complete(&d).then_some(d)
}

/// An initialised cluster, not running until [`Cluster::start`].
pub struct Cluster {
    bin: PathBuf,
    /// Holds the data directory (`data/`), the socket, the server log and any scratch files.
    dir: tempfile::TempDir,
    /// The `postgres` user's ids when the tests run as root.
    owner: Option<(u32, u32)>,
    /// The server's port: the TCP port on 127.0.0.1 when `loopback`, else only the number
    /// in the socket's name.
    port: u16,
    loopback: bool,
}

/// The server of a started [`Cluster`]; stops it (immediate mode) when dropped.
pub struct Running<'a>(&'a Cluster);

impl Cluster {
    /// `initdb` in a fresh temporary directory; the server will listen only on a unix
    /// socket in it, so nothing listens on the network and no port can clash with another
    /// cluster.
    pub fn create(bin: PathBuf) -> Result<Cluster, String> {
        Self::init(bin, 5432, false)
    }

    /// Like [`Cluster::create`], but the server also listens on 127.0.0.1 at a port that
    /// was free when the cluster was made ([`Cluster::port`]).
    pub fn create_on_loopback(bin: PathBuf) -> Result<Cluster, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        Self::init(bin, port, true)
    }

    fn init(bin: PathBuf, port: u16, loopback: bool) -> Result<Cluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("larder-pg")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let owner = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or("running as root and there is no `postgres` user to run the server")?;
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let cluster = Cluster {
            bin,
            dir,
            owner,
            port,
            loopback,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                "data",
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        Ok(cluster)
    }

    /// The cluster's directory: its socket's directory (a `-h` value) and room for
    /// scratch files, readable by the cluster's owner.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's port (`-p`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path of one of the cluster's programs (`pg_dump`, `pg_restore`, …).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// A client or server program of the cluster, run as its owner in its directory, with
    /// the connection settings of the cluster (the socket) and none of the caller's `PG*`
    /// variables.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.program(program));
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("PG")) {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir())
            .env("HOME", self.dir())
            .env("LC_ALL", "C")
            .env("PGHOST", self.dir())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Runs a program to completion; its stdout, or what it said on stderr.
    pub fn run<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Result<Vec<u8>, String> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out.stdout)
    }

    /// One SQL statement (or several) in database `db`, stopping at the first error; the
    /// rows unaligned, without headers, `|` between columns.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<Running<'_>, String> {
        let listen = if self.loopback { "127.0.0.1" } else { "" };
        let options = format!(
            "-c listen_addresses='{listen}' -c port={} -c unix_socket_directories='{}' \
             -c fsync=off",
            self.port,
            self.dir().display()
        );
        let started = self.run(
            "pg_ctl",
            &[
                "-D",
                "data",
                "-l",
                "server.log",
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
        if let Err(why) = started {
            let log = std::fs::read_to_string(self.dir().join("server.log")).unwrap_or_default();
            return Err(format!("{why}\nserver log:\n{log}"));
        }
        Ok(Running(self))
    }
}

impl Running<'_> {
    /// The cluster this server runs.
    pub fn cluster(&self) -> &Cluster {
        self.0
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .run("pg_ctl", &["-D", "data", "-m", "immediate", "-w", "stop"]);
    }
}
