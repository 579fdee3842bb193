//! A real S3-compatible server on 127.0.0.1 for the object-store tests: moto's server
//! (`pip install 'moto[server]'`, done by `.ci/install-deps.sh`), one per test, on a free
//! port, killed when the test ends (drop runs on panics too).
//!
//! No server, no test: with `CI` set that fails the test; elsewhere the test is skipped with
//! a loud note on stderr, never passed in silence.

#![allow(dead_code)] // each test crate uses its own subset
#![allow(clippy::panic, reason = "test helpers fail the test by panicking")]

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key the tests sign with (moto accepts any).
pub const ACCESS_KEY: &str = "larder-test";
/// Secret key the tests sign with.
pub const SECRET_KEY: &str = "larder-test-secret";
/// Region the tests use.
pub const REGION: &str = "us-east-1";

/// `AWS_*` variables that would change what the binary does if the developer's shell had
/// them set (another endpoint, a profile, real credentials).
pub const AWS_SCRUBBED: [&str; 10] = [
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

/// How long moto may take to answer after it is started.
const STARTUP: Duration = Duration::from_secs(60);

/// A running moto server.
pub struct S3Server {
    child: Child,
    port: u16,
    /// The server's stderr (its request log), read only to say why it did not start.
    log: File,
}

impl S3Server {
    /// Starts a server, or says loudly why it cannot: `None` (skip) outside CI, a panic in
    /// CI (`CI` set), where the object-store tests must run.
    pub fn start(test: &str) -> Option<Self> {
        match Self::try_start() {
            Ok(s) => Some(s),
            Err(why) => {
                if std::env::var_os("CI").is_some() {
                    panic!("{test}: cannot start the S3 test server (moto): {why}");
                }
                // Straight to stderr: the test harness captures `eprintln!` of a passing
                // test, and this note must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!! SKIPPED {test}: cannot start the S3 test server (moto): {why}\n\
                     !!!!! install it with .ci/install-deps.sh (pip install 'moto[server]'); \
                     with CI set this is a failure\n"
                );
                None
            }
        }
    }

    fn try_start() -> Result<Self, String> {
        let port = free_port()?;
        let mut last = String::new();
        // `moto_server` as pip installs it; `python3 -m moto.server` if the script is not on
        // PATH (a user install).
        let commands: [(&str, &[&str]); 2] =
            [("moto_server", &[]), ("python3", &["-m", "moto.server"])];
        for (program, pre) in commands {
            let log = tempfile::tempfile().map_err(|e| format!("temporary log file: {e}"))?;
            let stderr = log.try_clone().map_err(|e| e.to_string())?;
            let spawned = Command::new(program)
                .args(pre)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn();
            let child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    last = format!("`{program}`: {e}");
                    continue;
                }
            };
            let mut server = Self { child, port, log };
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) => last = format!("`{program}`: {e}"),
            }
        }
        Err(last)
    }

    /// Waits until the server answers an HTTP request.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let mut err = String::new();
                let _ = self.log.rewind();
                let _ = self.log.read_to_string(&mut err);
                let tail: Vec<&str> = err.lines().rev().take(5).collect();
                return Err(format!(
                    "exited with {status}: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            if self.request("GET", "/").is_ok_and(|s| s == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("did not answer within {STARTUP:?}"))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a bucket (moto does not check signatures, so a plain PUT does).
    pub fn create_bucket(&self, name: &str) {
        let status = self
            .request("PUT", &format!("/{name}"))
            .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
        assert_eq!(status, 200, "create bucket {name}: HTTP {status}");
    }

    /// Every key in the bucket, sorted, as the server itself lists them (not through
    /// larder): what a test wrote and what it left behind. One page (up to 1000 keys).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let (status, body) = self
            .exchange("GET", &format!("/{bucket}?list-type=2"))
            .unwrap_or_else(|e| panic!("list bucket {bucket}: {e}"));
        assert_eq!(status, 200, "list bucket {bucket}: HTTP {status}: {body}");
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_owned()))
            .collect();
        keys.sort();
        keys
    }

    /// One HTTP/1.1 request with an empty body; returns the status code.
    fn request(&self, method: &str, path: &str) -> Result<u16, String> {
        self.exchange(method, path).map(|(status, _)| status)
    }

    /// One HTTP/1.1 request with an empty body on its own connection; the status code and
    /// the rest of the answer (headers and body) as text.
    fn exchange(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {:?}", answer.get(..40)))?;
        Ok((status, answer))
    }

    /// The variables a `larder` process needs to reach this server: endpoint, region and
    /// credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", REGION.into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local address: {e}"))
}
