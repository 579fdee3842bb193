//! S3 faults, through the real binary on an `s3://bucket/prefix` repository on moto (started
//! per test by `common/s3.rs`), with a fault proxy between larder and the server: a server
//! cut off mid-snapshot (no snapshot object, a clean line, and the next snapshot, `check` and
//! `restore` work once it is back), rejected credentials (moto's IAM authentication turned
//! on), a slow server, a server that stops answering, and errors that no retry can cure (a
//! denied PUT, a missing bucket), which must cost one request, not the retry budget.
//!
//! Without moto these tests fail when `CI` is set and are skipped with a loud note otherwise.

#![cfg(feature = "s3")]
#![allow(clippy::panic, clippy::unwrap_used, reason = "tests fail by panicking")]

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use s3::S3Server;
use serde_json::Value;

/// How often a proxy thread blocked on a socket looks at the switches.
const POLL: Duration = Duration::from_millis(20);

/// What the proxy does with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Relays requests and answers (after the configured delay).
    Up = 0,
    /// Listens nowhere (connections are refused) and has closed every connection.
    Down = 1,
    /// Accepts connections and reads requests, but passes nothing on and answers nothing.
    Silent = 2,
}

/// What the proxy's threads share.
struct Shared {
    upstream: u16,
    port: u16,
    mode: AtomicU8,
    /// Bumped by every cut: connections of an older generation close.
    generation: AtomicUsize,
    /// Added before each request goes up and before each answer comes back.
    delay_ms: AtomicU64,
    /// PUTs whose path contains this are answered 403 AccessDenied by the proxy itself.
    deny_puts: Mutex<Option<String>>,
    /// `METHOD PATH` of every request the proxy read, in order.
    requests: Mutex<Vec<String>>,
    /// What the proxy could not relay (a test bug, reported by `requests`).
    problems: Mutex<Vec<String>>,
    /// Whether the listener is bound right now.
    listening: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    fn mode(&self) -> Mode {
        match self.mode.load(SeqCst) {
            0 => Mode::Up,
            1 => Mode::Down,
            _ => Mode::Silent,
        }
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(SeqCst))
    }

    /// Logs a request by its head; returns `METHOD PATH`.
    fn record(&self, head: &str) -> String {
        let line = head.lines().next().unwrap_or_default();
        let request = line.rsplit_once(' ').map_or(line, |(r, _)| r).to_owned();
        self.requests.lock().unwrap().push(request.clone());
        request
    }

    /// Whether a connection opened in `generation` may go on.
    fn alive(&self, generation: usize) -> bool {
        !self.stop.load(SeqCst) && self.generation.load(SeqCst) == generation
    }
}

/// A TCP proxy in front of the S3 server, for faults the server cannot make itself: it can
/// be cut (every connection closed, new ones refused) and reconnected on the same port,
/// fall silent, add latency, and refuse chosen PUTs. Requests are read whole (HTTP/1.1, one
/// at a time per connection, `Content-Length` bodies), answers go back byte for byte. Its
/// threads stop when it is dropped.
struct FaultProxy {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared {
            upstream,
            port: listener.local_addr().unwrap().port(),
            mode: AtomicU8::new(Mode::Up as u8),
            generation: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
            deny_puts: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            problems: Mutex::new(Vec::new()),
            listening: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || Self::accept(listener, &s));
        Self {
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Accepts connections while up or silent; closes the listener while down and binds
    /// the same port again when up.
    fn accept(first: TcpListener, shared: &Arc<Shared>) {
        let mut listener = Some(first);
        while !shared.stop.load(SeqCst) {
            if shared.mode() == Mode::Down {
                listener = None;
                shared.listening.store(false, SeqCst);
                std::thread::sleep(POLL);
                continue;
            }
            let Some(l) = &listener else {
                // std sets SO_REUSEADDR: the port's old connections in TIME_WAIT do not
                // stand in the way.
                match TcpListener::bind(("127.0.0.1", shared.port)) {
                    Ok(l) => {
                        l.set_nonblocking(true).unwrap();
                        listener = Some(l);
                        shared.listening.store(true, SeqCst);
                    }
                    Err(_) => std::thread::sleep(POLL),
                }
                continue;
            };
            match l.accept() {
                Ok((client, _)) => {
                    let s = shared.clone();
                    std::thread::spawn(move || Self::relay(client, &s));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// One client connection, with its own connection to the server.
    fn relay(client: TcpStream, shared: &Shared) {
        // The generation before the mode: a cut after this line closes the connection, a
        // cut before it shows as `Down`.
        let generation = shared.generation.load(SeqCst);
        let _ = client.set_nonblocking(false);
        let _ = client.set_read_timeout(Some(POLL));
        match shared.mode() {
            Mode::Down => {}
            Mode::Silent => {
                // Read and drop requests until the client gives up.
                let mut pending = Vec::new();
                while let Some((head, _)) =
                    Self::next_request(&client, &mut pending, shared, generation)
                {
                    shared.record(&head);
                }
            }
            Mode::Up => {
                if let Ok(server) = TcpStream::connect(("127.0.0.1", shared.upstream)) {
                    let _ = server.set_read_timeout(Some(POLL));
                    let sent = AtomicUsize::new(0);
                    std::thread::scope(|scope| {
                        scope.spawn(|| {
                            Self::pass_answers(&server, &client, &sent, shared, generation)
                        });
                        Self::pass_requests(&client, &server, &sent, shared, generation);
                    });
                }
            }
        }
        let _ = client.shutdown(Shutdown::Both);
    }

    /// Client to server: whole requests, logged, delayed, denied or swallowed as set.
    fn pass_requests(
        client: &TcpStream,
        mut server: &TcpStream,
        sent: &AtomicUsize,
        shared: &Shared,
        generation: usize,
    ) {
        let mut pending = Vec::new();
        while let Some((head, body)) = Self::next_request(client, &mut pending, shared, generation)
        {
            let request = shared.record(&head);
            if shared.mode() == Mode::Silent {
                continue;
            }
            let denied = shared.deny_puts.lock().unwrap().clone();
            if denied.is_some_and(|d| request.starts_with("PUT ") && request.contains(&d)) {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                            <Message>Access Denied</Message></Error>";
                let answer = format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut c = client;
                let _ = c.write_all(answer.as_bytes());
                break;
            }
            std::thread::sleep(shared.delay());
            if server.write_all(head.as_bytes()).is_err() || server.write_all(&body).is_err() {
                break;
            }
            sent.fetch_add(1, SeqCst);
        }
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }

    /// Server to client: answers byte for byte, the first bytes of each one delayed; held
    /// back while silent.
    fn pass_answers(
        mut server: &TcpStream,
        mut client: &TcpStream,
        sent: &AtomicUsize,
        shared: &Shared,
        generation: usize,
    ) {
        let mut answered = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while shared.alive(generation) {
            if shared.mode() == Mode::Silent {
                std::thread::sleep(POLL);
                continue;
            }
            match server.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let requests = sent.load(SeqCst);
                    if answered < requests {
                        std::thread::sleep(shared.delay());
                        answered = requests;
                    }
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }

    /// The next request on the connection: its head (through the blank line) and its body;
    /// `None` once the client closes or the connection is cut. `pending` keeps what was
    /// read past the request.
    fn next_request(
        mut c: &TcpStream,
        pending: &mut Vec<u8>,
        shared: &Shared,
        generation: usize,
    ) -> Option<(String, Vec<u8>)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut fill = |pending: &mut Vec<u8>| -> Option<()> {
            loop {
                if !shared.alive(generation) {
                    return None;
                }
                match c.read(&mut buf) {
                    Ok(0) => return None,
                    Ok(n) => {
                        pending.extend_from_slice(&buf[..n]);
                        return Some(());
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return None,
                }
            }
        };
        let head_len = loop {
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            fill(pending)?;
        };
        let head =
            String::from_utf8_lossy(&pending.drain(..head_len).collect::<Vec<_>>()).into_owned();
        let header = |want: &str| {
            head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case(want)
                    .then(|| value.trim().to_owned())
            })
        };
        if header("transfer-encoding").is_some() {
            shared
                .problems
                .lock()
                .unwrap()
                .push(format!("a request without Content-Length:\n{head}"));
            return None;
        }
        let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap_or(0));
        while pending.len() < len {
            fill(pending)?;
        }
        let body = pending.drain(..len).collect();
        Some((head, body))
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// Closes every connection and refuses new ones, until [`FaultProxy::reconnect`].
    fn cut(&self) {
        self.shared.mode.store(Mode::Down as u8, SeqCst);
        self.shared.generation.fetch_add(1, SeqCst);
        self.wait_listening(false);
    }

    /// Listens again, on the same port, and relays.
    fn reconnect(&self) {
        self.shared.mode.store(Mode::Up as u8, SeqCst);
        self.wait_listening(true);
    }

    /// Stops answering: requests are read and dropped, answers held back.
    fn fall_silent(&self) {
        self.shared.mode.store(Mode::Silent as u8, SeqCst);
    }

    fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap();
        self.shared.delay_ms.store(ms, SeqCst);
    }

    /// Answers every PUT whose path contains `part` with 403 AccessDenied.
    fn deny_puts(&self, part: &str) {
        *self.shared.deny_puts.lock().unwrap() = Some(part.to_owned());
    }

    fn wait_listening(&self, listening: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.shared.listening.load(SeqCst) != listening {
            assert!(
                Instant::now() < deadline,
                "the proxy did not {} port {}",
                if listening { "bind" } else { "close" },
                self.shared.port
            );
            std::thread::sleep(POLL);
        }
    }

    /// `METHOD PATH` of every request read so far.
    fn requests(&self) -> Vec<String> {
        let problems = self.shared.problems.lock().unwrap();
        assert!(
            problems.is_empty(),
            "the proxy could not relay: {problems:?}"
        );
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many requests so far were `method` with `part` in their path.
    fn count(&self, method: &str, part: &str) -> usize {
        let prefix = format!("{method} ");
        self.requests()
            .iter()
            .filter(|r| r.starts_with(&prefix) && r.contains(part))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// A temporary environment whose repository is `url` on a server reached at `endpoint`.
struct S3Repo {
    env: Env,
    url: String,
    aws: Vec<(&'static str, String)>,
}

impl S3Repo {
    fn new(server: &S3Server, url: &str, endpoint: String) -> Self {
        let mut aws = server.env();
        for (k, v) in &mut aws {
            if *k == "AWS_ENDPOINT_URL" {
                v.clone_from(&endpoint);
            }
        }
        Self {
            env: Env::new(),
            url: url.to_owned(),
            aws,
        }
    }

    /// `larder` on the S3 repository, `extra` variables set last.
    fn command(&self, extra: &[(&str, &str)]) -> std::process::Command {
        let mut c = self.env.std_larder();
        for v in s3::AWS_SCRUBBED {
            c.env_remove(v);
        }
        c.envs(self.aws.iter().map(|(k, v)| (k, v)))
            .env("LARDER_REPOSITORY", &self.url)
            .env_remove("LARDER_S3_RETRIES")
            .env_remove("AWS_TIMEOUT")
            .envs(extra.iter().copied());
        c
    }

    /// `larder ARGS…` with `extra` variables, killed after [`TIMEOUT`].
    fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut c = assert_cmd::Command::from_std(self.command(extra));
        c.timeout(TIMEOUT).args(args).output().expect("run larder")
    }

    /// `larder ARGS…`, asserting success; stdout.
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run_with(args, &[]);
        assert_success(&out, &args.join(" "));
        out.stdout
    }

    fn init(&self) {
        let mut init = vec!["init", "--pack-size", "1M"];
        init.extend(FAST_KDF);
        self.ok(&init);
    }

    /// `--json snapshot --name NAME --stdin` of `data`; the new snapshot's id.
    fn snapshot(&self, name: &str, data: &[u8]) -> String {
        let mut c = assert_cmd::Command::from_std(self.command(&[]));
        let out = c
            .timeout(TIMEOUT)
            .args(["--json", "snapshot", "--name", name, "--stdin"])
            .write_stdin(data.to_vec())
            .output()
            .expect("run larder snapshot");
        assert_success(&out, "snapshot --stdin");
        id_of(&parse_json(&out.stdout))
    }

    /// Ids of the snapshots `larder snapshots --json` lists.
    fn snapshot_ids(&self) -> Vec<String> {
        match parse_json(&self.ok(&["--json", "snapshots"])) {
            Value::Array(list) => list.iter().map(id_of).collect(),
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }
}

/// Keys of `bucket` under `folder`, as the server lists them (not through the proxy).
fn keys_under(server: &S3Server, bucket: &str, folder: &str) -> Vec<String> {
    server
        .keys(bucket)
        .into_iter()
        .filter(|k| k.starts_with(folder))
        .collect()
}

/// `larder --json snapshot --name db --stdin` (with `extra` variables) of a stream written
/// from here: once two packs have gone up through `proxy`, `fault` is called, a few more
/// packs' worth is written (if larder still reads) and the stream ends. Returns larder's
/// output and how long it ran after the fault.
fn snapshot_with_fault(
    repo: &S3Repo,
    proxy: &FaultProxy,
    extra: &[(&str, &str)],
    fault: impl FnOnce(),
) -> (Output, Duration) {
    let data = random_bytes(1, 24 << 20);
    let mut child = repo
        .command(extra)
        .args(["--json", "snapshot", "--name", "db", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn larder snapshot");
    let mut stdin = child.stdin.take().unwrap();
    let mut pieces = data.chunks(256 << 10);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut fault = Some(fault);
    for piece in pieces.by_ref() {
        if stdin.write_all(piece).is_err() {
            break;
        }
        if proxy.count("PUT", "/packs/") >= 2 {
            fault.take().unwrap()();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no two packs went up within a minute"
        );
    }
    assert!(fault.is_none(), "the stream ended before two packs went up");
    let faulted = Instant::now();
    // On its own thread: larder may stop reading, and `wait_output` must still time it.
    let rest: Vec<u8> = pieces.take(8).flatten().copied().collect();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&rest);
    });
    let out = wait_output(child, "snapshot with a fault mid-stream");
    let took = faulted.elapsed();
    writer.join().unwrap();
    (out, took)
}

#[test]
fn a_server_cut_off_mid_snapshot_leaves_no_snapshot_and_the_next_one_works() {
    let Some(server) =
        S3Server::start("a_server_cut_off_mid_snapshot_leaves_no_snapshot_and_the_next_one_works")
    else {
        return;
    };
    server.create_bucket("larder-cut");
    let proxy = FaultProxy::start(server.port());
    let repo = S3Repo::new(&server, "s3://larder-cut/r", proxy.endpoint());
    repo.init();

    let (out, took) = snapshot_with_fault(&repo, &proxy, &[("LARDER_S3_RETRIES", "1")], || {
        proxy.cut();
    });
    let err = assert_failure(&out, 1, &["s3://larder-cut/r/", &proxy.endpoint()]);
    assert!(
        out.stdout.is_empty(),
        "a report on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        took < Duration::from_secs(15),
        "larder took {took:?} to give up after the cut:\n{err}"
    );
    assert_eq!(
        keys_under(&server, "larder-cut", "r/snapshots/"),
        Vec::<String>::new(),
        "a snapshot object was written"
    );

    // Back: the next snapshot goes through, the repository checks, the stream restores.
    proxy.reconnect();
    assert_eq!(repo.snapshot_ids(), Vec::<String>::new());
    let stream = random_bytes(2, 3 << 20);
    let id = repo.snapshot("db", &stream);
    assert_eq!(repo.snapshot_ids(), std::slice::from_ref(&id));
    repo.ok(&["check", "--read-data"]);
    assert_same_bytes(
        &repo.ok(&["restore", &id]),
        &stream,
        "the snapshot after the cut",
    );
}

#[test]
fn rejected_credentials_fail_at_once_in_one_line() {
    let Some(server) = S3Server::start("rejected_credentials_fail_at_once_in_one_line") else {
        return;
    };
    server.create_bucket("larder-auth");
    // While moto checks nothing: a repository with a snapshot, and two IAM users, one
    // allowed every S3 action, one allowed none.
    let repo = S3Repo::new(&server, "s3://larder-auth/r", server.endpoint());
    repo.init();
    repo.snapshot("db", b"dump");
    // (Only refusals can be tested: moto 5.2 miscomputes the signature of a ListObjectsV2
    // whose prefix holds a `/`, boto3's as much as larder's, so under enforced
    // authentication even the allowed user cannot open a repository.)
    let (allowed_id, _) = server.create_iam_key("larder-allowed", true);
    let (denied_id, denied_secret) = server.create_iam_key("larder-denied", false);
    server.enforce_auth();

    let cases = [
        // The test keys: no such access key at the server.
        (
            "an unknown access key",
            s3::ACCESS_KEY,
            s3::SECRET_KEY,
            "InvalidAccessKeyId",
        ),
        (
            "a wrong secret",
            allowed_id.as_str(),
            "not-the-secret",
            "SignatureDoesNotMatch",
        ),
        (
            "a key with no permission",
            denied_id.as_str(),
            denied_secret.as_str(),
            "AccessDenied",
        ),
    ];
    for (what, id, secret, code) in cases {
        let creds = [("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)];
        for args in [&["snapshots"][..], &["snapshot", "--name", "db", "--stdin"]] {
            let before = server.requests().len();
            let start = Instant::now();
            let out = repo.run_with(args, &creds);
            let took = start.elapsed();
            let err = assert_failure(
                &out,
                1,
                &["s3://larder-auth/r/config", "403 Forbidden", code],
            );
            // Default retries: a refusal is final, so one request and no back-off.
            let sent = server.requests().split_off(before);
            assert_eq!(
                sent,
                ["GET /larder-auth/r/config 403"],
                "{what}, `larder {}`: requests after the refusal:\n{err}",
                args.join(" ")
            );
            assert!(took < Duration::from_secs(15), "{what}: took {took:?}");
        }
    }
}

#[test]
fn a_slow_server_is_only_slow() {
    let Some(server) = S3Server::start("a_slow_server_is_only_slow") else {
        return;
    };
    server.create_bucket("larder-slow");
    let proxy = FaultProxy::start(server.port());
    let repo = S3Repo::new(&server, "s3://larder-slow/r", proxy.endpoint());
    repo.init();
    // 50 ms each way on every request and answer, as to a bucket across an ocean.
    proxy.set_delay(Duration::from_millis(50));
    let stream = random_bytes(3, 3 << 20);
    let start = Instant::now();
    let id = repo.snapshot("db", &stream);
    let restored = repo.ok(&["restore", &id]);
    let took = start.elapsed();
    assert_same_bytes(&restored, &stream, "a stream through a slow server");
    let packs = proxy.count("PUT", "/packs/");
    assert!(packs >= 3, "{packs} packs went up");
    // Some twenty requests one after another at 100 ms each: the delay was there.
    assert!(took > Duration::from_secs(1), "took only {took:?}");
}

#[test]
fn a_server_that_stops_answering_fails_in_bounded_time() {
    let Some(server) = S3Server::start("a_server_that_stops_answering_fails_in_bounded_time")
    else {
        return;
    };
    server.create_bucket("larder-silent");

    // Silent from the start, with object_store's default request timeout (30 s) and no
    // retries: the first request gives up, and larder with it. Runs meanwhile.
    let mute = FaultProxy::start(server.port());
    mute.fall_silent();
    let silent = S3Repo::new(&server, "s3://larder-silent/never", mute.endpoint());
    let default_timeout = silent
        .command(&[("LARDER_S3_RETRIES", "0")])
        .arg("snapshots")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn larder snapshots");
    let started = Instant::now();

    // Silent mid-snapshot, with a 2 s request timeout (`AWS_TIMEOUT`, read by object_store)
    // and one retry: the pack PUTs in flight and the lock's removal give up after two
    // attempts each (some 10 s, as the writer starts one more pack after the first fail).
    let proxy = FaultProxy::start(server.port());
    let repo = S3Repo::new(&server, "s3://larder-silent/r", proxy.endpoint());
    repo.init();
    let extra = [("LARDER_S3_RETRIES", "1"), ("AWS_TIMEOUT", "2s")];
    let (out, took) = snapshot_with_fault(&repo, &proxy, &extra, || proxy.fall_silent());
    let err = assert_failure(&out, 1, &["s3://larder-silent/r/", "timed out"]);
    assert!(
        took < Duration::from_secs(25),
        "larder took {took:?} to give up:\n{err}"
    );
    assert_eq!(
        keys_under(&server, "larder-silent", "r/snapshots/"),
        Vec::<String>::new(),
        "a snapshot object was written"
    );

    let out = wait_output(default_timeout, "snapshots on a silent server");
    let took = started.elapsed();
    let err = assert_failure(&out, 1, &["s3://larder-silent/never/config", "timed out"]);
    assert!(
        took < Duration::from_secs(45),
        "larder took {took:?} to give up:\n{err}"
    );
    assert_eq!(mute.count("GET", "/config"), 1, "{:?}", mute.requests());
}

#[test]
fn a_denied_put_is_not_retried() {
    let Some(server) = S3Server::start("a_denied_put_is_not_retried") else {
        return;
    };
    server.create_bucket("larder-denied");
    let proxy = FaultProxy::start(server.port());
    let repo = S3Repo::new(&server, "s3://larder-denied/r", proxy.endpoint());
    repo.init();
    // As a bucket policy that denies writes under packs/: the server's final word.
    proxy.deny_puts("/packs/");
    let start = Instant::now();
    let mut c = assert_cmd::Command::from_std(repo.command(&[]));
    let out = c
        .timeout(TIMEOUT)
        .args(["--json", "snapshot", "--name", "db", "--stdin"])
        .write_stdin(random_bytes(4, 3 << 20))
        .output()
        .expect("run larder snapshot");
    let took = start.elapsed();
    let err = assert_failure(
        &out,
        1,
        &[
            "s3://larder-denied/r/packs/",
            "403 Forbidden",
            "AccessDenied",
        ],
    );
    // Up to four packs go up at once; none of them is tried twice.
    let mut puts: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/packs/"))
        .collect();
    let tried = puts.len();
    puts.sort();
    puts.dedup();
    assert!(tried > 0);
    assert_eq!(
        puts.len(),
        tried,
        "a denied PUT was tried again (default retries): {puts:?}\n{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{err}");
    assert_eq!(
        keys_under(&server, "larder-denied", "r/snapshots/"),
        Vec::<String>::new()
    );
    assert_eq!(
        keys_under(&server, "larder-denied", "r/locks/"),
        Vec::<String>::new(),
        "the lock was not removed"
    );
}

#[test]
fn a_missing_bucket_is_not_retried() {
    let Some(server) = S3Server::start("a_missing_bucket_is_not_retried") else {
        return;
    };
    let repo = S3Repo::new(&server, "s3://larder-nowhere/r", server.endpoint());
    let mut init = vec!["init"];
    init.extend(FAST_KDF);
    let snapshot = ["snapshot", "--name", "db", "--stdin"];
    for args in [&init[..], &["snapshots"], &snapshot] {
        let before = server.requests().len();
        let start = Instant::now();
        let out = repo.run_with(args, &[]);
        let took = start.elapsed();
        let err = assert_failure(
            &out,
            1,
            &[
                "bucket `larder-nowhere` does not exist",
                "s3://larder-nowhere/r/",
            ],
        );
        // Default retries: a missing bucket is final, so one request and no back-off.
        let sent: Vec<String> = server
            .requests()
            .split_off(before)
            .into_iter()
            .map(|r| match r.split_once(".larder-probe-") {
                Some((head, rest)) => {
                    format!(
                        "{head}.larder-probe-* {}",
                        rest.rsplit(' ').next().unwrap_or("")
                    )
                }
                None => r,
            })
            .collect();
        // `init` asks first whether the server honours conditional writes, and removes
        // its probe.
        let expected: &[&str] = if args[0] == "init" {
            &[
                "PUT /larder-nowhere/r/.larder-probe-* 404",
                "POST /larder-nowhere?delete 404",
            ]
        } else {
            &["GET /larder-nowhere/r/config 404"]
        };
        assert_eq!(sent, expected, "`larder {}`:\n{err}", args.join(" "));
        assert!(took < Duration::from_secs(10), "took {took:?}:\n{err}");
    }
}
