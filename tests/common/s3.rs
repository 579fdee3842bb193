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
        crate::common::required(
            test,
            "cannot start the S3 test server (moto)",
            "pip install 'moto[server]'",
            Self::try_start(),
        )
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
        self.exchange_with(method, path, &[], b"")
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

impl S3Server {
    /// Every request the server has answered so far, in order, as `METHOD PATH STATUS`
    /// (`GET /bucket/key 200`), from its request log: a line is written when the answer
    /// starts, so the list is complete once a client has its answer.
    pub fn requests(&self) -> Vec<String> {
        use std::os::unix::fs::FileExt;
        // `read_at`: the server writes through the same open file, so the shared offset
        // must not move.
        let mut bytes = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self
                .log
                .read_at(&mut buf, bytes.len() as u64)
                .unwrap_or_else(|e| panic!("read the server's request log: {e}"));
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| {
                // 127.0.0.1 - - [date] "GET /path HTTP/1.1" 200 -
                let (_, quoted) = l.split_once('"')?;
                let (request, after) = quoted.split_once('"')?;
                let (method, target) = request.split_once(' ')?;
                let (path, _version) = target.rsplit_once(' ')?;
                let status = after.split_whitespace().next()?;
                let _: u16 = status.parse().ok()?;
                Some(format!("{method} {path} {status}"))
            })
            .collect()
    }

    /// Turns on moto's IAM authentication: from now on every request must be signed with
    /// an access key of a user created by [`S3Server::create_iam_key`], and that user's
    /// policies decide what it may do. The test helpers that send unsigned requests
    /// (`create_bucket`, `keys`) stop working.
    pub fn enforce_auth(&self) {
        let (status, body) = self
            .exchange_with(
                "POST",
                "/moto-api/reset-auth",
                &[("Content-Type", "text/plain")],
                b"0",
            )
            .unwrap_or_else(|e| panic!("enable moto's authentication: {e}"));
        assert_eq!(
            status, 200,
            "enable moto's authentication: HTTP {status}: {body}"
        );
    }

    /// Creates the IAM user `user` with one access key and, if `s3_allowed`, a policy that
    /// allows every S3 action; returns the key's id and secret. Only before
    /// [`S3Server::enforce_auth`] (the requests are not signed).
    pub fn create_iam_key(&self, user: &str, s3_allowed: bool) -> (String, String) {
        let iam = |form: &str| {
            // moto picks the service from the credential scope; it checks no signature
            // while authentication is off.
            let auth = "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, \
                        SignedHeaders=host, Signature=0";
            let (status, body) = self
                .exchange_with(
                    "POST",
                    "/",
                    &[
                        ("Authorization", auth),
                        ("Content-Type", "application/x-www-form-urlencoded"),
                    ],
                    format!("{form}&Version=2010-05-08").as_bytes(),
                )
                .unwrap_or_else(|e| panic!("IAM {form}: {e}"));
            assert_eq!(status, 200, "IAM {form}: HTTP {status}: {body}");
            body
        };
        iam(&format!("Action=CreateUser&UserName={user}"));
        let created = iam(&format!("Action=CreateAccessKey&UserName={user}"));
        let field = |name: &str| {
            created
                .split_once(&format!("<{name}>"))
                .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
                .map(|(v, _)| v.to_owned())
                .unwrap_or_else(|| panic!("no {name} in CreateAccessKey's answer: {created}"))
        };
        if s3_allowed {
            // {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}
            let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect\
                          %22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A%2A%22%2C%22Resource%22%3A\
                          %22%2A%22%7D%5D%7D";
            iam(&format!(
                "Action=PutUserPolicy&UserName={user}&PolicyName=s3&PolicyDocument={policy}"
            ));
        }
        (field("AccessKeyId"), field("SecretAccessKey"))
    }

    /// One HTTP/1.1 request with `headers` and `body` on its own connection; the status
    /// code and the rest of the answer as text.
    fn exchange_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body).map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {:?}", answer.get(..40)))?;
        Ok((status, answer))
    }
}
