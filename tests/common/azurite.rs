//! A real Azure Blob server on 127.0.0.1 for the Azure tests: Azurite's blob service
//! (`npm install -g azurite`, done by `.ci/install-deps.sh`), one per test, on a free port,
//! with its data in a temporary directory, killed when the test ends (drop runs on panics
//! too).
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

use tempfile::TempDir;

/// Azurite's one well-known account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key (public: Azurite's documentation prints it).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Whether the developer's shell variable `name` would change what the binary does on
/// Azure (another account, endpoint, credential or emulator URL): every `AZURE_*` and
/// `AZURITE_*` variable, which `object_store` reads.
pub fn is_azure_variable(name: &str) -> bool {
    name.starts_with("AZURE_") || name.starts_with("AZURITE_")
}

/// How long Azurite may take to answer after it is started.
const STARTUP: Duration = Duration::from_secs(60);

/// The storage service version the helper's own requests name.
const API_VERSION: &str = "2021-08-06";

/// A running Azurite blob service.
pub struct AzuriteServer {
    child: Child,
    port: u16,
    /// Its stderr, read only to say why it did not start.
    log: File,
    /// Its data (`--location`), removed after it is killed.
    _data: TempDir,
}

impl AzuriteServer {
    /// Starts a server, or says loudly why it cannot: `None` (skip) outside CI, a panic in
    /// CI (`CI` set), where the Azure tests must run.
    pub fn start(test: &str) -> Option<Self> {
        crate::common::required(
            test,
            "cannot start the Azure test server (Azurite)",
            "npm install -g azurite",
            Self::try_start(),
        )
    }

    fn try_start() -> Result<Self, String> {
        let port = free_port()?;
        let data = tempfile::tempdir().map_err(|e| format!("temporary data directory: {e}"))?;
        let log = tempfile::tempfile().map_err(|e| format!("temporary log file: {e}"))?;
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("azurite-blob")
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(data.path())
            // Newer services versions than this Azurite knows are fine for what larder asks;
            // `--loose` lets unknown headers through.
            .args(["--skipApiVersionCheck", "--loose", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("`azurite-blob`: {e}"))?;
        let mut server = Self {
            child,
            port,
            log,
            _data: data,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until the server answers an HTTP request (any status).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let mut err = String::new();
                let _ = self.log.rewind();
                let _ = self.log.read_to_string(&mut err);
                let tail: Vec<&str> = err.lines().rev().take(5).collect();
                return Err(format!(
                    "`azurite-blob` exited with {status}: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            if self.raw("GET", "/").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("did not answer within {STARTUP:?}"))
    }

    /// `http://127.0.0.1:PORT`: what `AZURITE_BLOB_STORAGE_URL` names.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`: the account's URL, as an endpoint.
    pub fn endpoint(&self) -> String {
        format!("{}/{ACCOUNT}", self.url())
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a container.
    pub fn create_container(&self, name: &str) {
        let (status, body) = self
            .signed("PUT", name, &[("restype", "container")])
            .unwrap_or_else(|e| panic!("create container {name}: {e}"));
        assert_eq!(
            status, 201,
            "create container {name}: HTTP {status}: {body}"
        );
    }

    /// Every blob name in the container, sorted, as the server itself lists them (not
    /// through larder). One page (up to 5000 names).
    pub fn blobs(&self, container: &str) -> Vec<String> {
        let (status, body) = self
            .signed(
                "GET",
                container,
                &[("comp", "list"), ("restype", "container")],
            )
            .unwrap_or_else(|e| panic!("list container {container}: {e}"));
        assert_eq!(
            status, 200,
            "list container {container}: HTTP {status}: {body}"
        );
        let mut names: Vec<String> = body
            .split("<Name>")
            .skip(1)
            .filter_map(|k| k.split_once("</Name>").map(|(k, _)| k.to_owned()))
            .collect();
        names.sort();
        names
    }

    /// The variables a `larder` process needs to reach this server through
    /// `object_store`'s emulator mode (its well-known account and key).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.url()),
        ]
    }

    /// One request with an empty body, signed with the account key (Shared Key). The
    /// signature is computed by `node` (Azurite runs on it, so it is there): the tests have
    /// no HMAC of their own. `path` is under the account; `query` sorted by name.
    fn signed(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(u16, String), String> {
        let date = String::from_utf8(
            Command::new("node")
                .args(["-e", "process.stdout.write(new Date().toUTCString())"])
                .output()
                .map_err(|e| format!("`node`: {e}"))?
                .stdout,
        )
        .map_err(|e| e.to_string())?;
        let resource = query
            .iter()
            .fold(format!("/{ACCOUNT}/{ACCOUNT}/{path}"), |acc, (k, v)| {
                format!("{acc}\n{k}:{v}")
            });
        // Verb, eleven empty standard headers, the canonical x-ms headers, the resource.
        let to_sign = format!(
            "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{API_VERSION}\n{resource}"
        );
        let sig = Command::new("node")
            .args([
                "-e",
                "const c = require('crypto'); process.stdout.write(c.createHmac('sha256', \
                 Buffer.from(process.argv[1], 'base64')).update(process.argv[2], 'utf8')\
                 .digest('base64'))",
                ACCOUNT_KEY,
                &to_sign,
            ])
            .output()
            .map_err(|e| format!("`node`: {e}"))?;
        if !sig.status.success() {
            return Err(format!(
                "`node` signing failed: {}",
                String::from_utf8_lossy(&sig.stderr)
            ));
        }
        let sig = String::from_utf8(sig.stdout).map_err(|e| e.to_string())?;
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let target = format!("/{ACCOUNT}/{path}?{}", q.join("&"));
        self.exchange(
            method,
            &target,
            &[
                ("x-ms-date", &date),
                ("x-ms-version", API_VERSION),
                ("Authorization", &format!("SharedKey {ACCOUNT}:{sig}")),
            ],
        )
    }

    /// One unsigned request (its answer is some HTTP status).
    fn raw(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        self.exchange(method, path, &[])
    }

    /// One HTTP/1.1 request with an empty body on its own connection; the status code and
    /// the rest of the answer (headers and body) as text.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n",
            self.port
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
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

impl Drop for AzuriteServer {
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
