//! The object-store backend against a real S3-compatible server on 127.0.0.1 (moto, started
//! per test by `common/s3.rs`): the backend conformance suite, multipart commits, prefixes
//! that do not see each other, every command end to end through the real binary on an
//! `s3://bucket/prefix` repository, the conditional-write probe and `init`'s refusal of a
//! server that ignores `If-None-Match` (moto behind a proxy that strips the header), and the
//! one-line errors for a wrong bucket and an unreachable endpoint.
//!
//! Without moto these tests fail when `CI` is set and are skipped with a loud note otherwise.

#![cfg(feature = "s3")]
#![allow(clippy::panic, clippy::unwrap_used, reason = "tests fail by panicking")]

mod common;
#[path = "common/tree.rs"]
mod fixture;
#[path = "common/s3.rs"]
mod s3;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::*;
use fixture::{Fixture, assert_same_tree, under};
use larder::backend::object_store::{ObjectStoreBackend, ObjectStoreOptions, PROBE_PREFIX, S3Url};
use larder::backend::{Backend, ConditionalWrites, Error, ObjectKey, Prefix, conformance};
use larder::id::PackId;
use s3::S3Server;
use serde_json::Value;

/// A backend on `url` at `server`, signed with the test credentials.
fn backend(server: &S3Server, url: &str, multipart_threshold: Option<u64>) -> ObjectStoreBackend {
    backend_at(server.endpoint(), url, multipart_threshold)
}

/// A backend on `url` at `endpoint`, signed with the test credentials.
fn backend_at(endpoint: String, url: &str, multipart_threshold: Option<u64>) -> ObjectStoreBackend {
    let settings = [
        ("aws_access_key_id", s3::ACCESS_KEY),
        ("aws_secret_access_key", s3::SECRET_KEY),
        ("aws_region", s3::REGION),
    ];
    let d = ObjectStoreOptions::default();
    let opts = ObjectStoreOptions {
        endpoint: Some(endpoint),
        multipart_threshold: multipart_threshold.unwrap_or(d.multipart_threshold),
        settings: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..d
    };
    ObjectStoreBackend::s3(S3Url::parse(url).unwrap(), opts).unwrap()
}

#[test]
fn conformance_on_a_real_server() {
    let Some(server) = S3Server::start("conformance_on_a_real_server") else {
        return;
    };
    server.create_bucket("larder-conformance");
    // moto honours `If-None-Match: *` on PutObject (412 once the key exists), so the suite's
    // create-only checks run against the server's own conditional write, not a stand-in.
    conformance::run(&backend(&server, "s3://larder-conformance/repo", None));
    // And at the root of a bucket.
    server.create_bucket("larder-root");
    conformance::run(&backend(&server, "s3://larder-root", None));
}

#[test]
fn large_staged_objects_go_up_in_parts() {
    let Some(server) = S3Server::start("large_staged_objects_go_up_in_parts") else {
        return;
    };
    server.create_bucket("larder-multipart");
    // Parts are 8 MiB (moto, like S3, refuses parts under 5 MiB but the last).
    let b = backend(&server, "s3://larder-multipart/r", Some(1 << 20));
    let data = random_bytes(7, 20 * 1024 * 1024 + 12_345);
    let key = ObjectKey::pack(&PackId([0x5a; 32]));
    let mut s = b.stage(Prefix::Packs).unwrap();
    for piece in data.chunks(1_000_003) {
        s.write(piece).unwrap();
    }
    s.commit(&key).unwrap();
    assert_same_bytes(&b.get(&key).unwrap(), &data, "multipart object");
    let across = 8 * 1024 * 1024 - 10..8 * 1024 * 1024 + 10;
    assert_eq!(
        b.get_range(&key, across.start as u64..across.end as u64)
            .unwrap(),
        &data[across]
    );
    let listed = b.list(Prefix::Packs).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, data.len() as u64);

    // A multipart commit checks the key is free first (it cannot be create-only itself).
    let mut again = b.stage(Prefix::Packs).unwrap();
    again.write(&data[..2 << 20]).unwrap();
    assert!(
        matches!(again.commit(&key), Err(Error::AlreadyExists { .. })),
        "a second multipart commit under a taken key is refused"
    );
    assert_same_bytes(&b.get(&key).unwrap(), &data, "first object kept");
}

#[test]
fn prefixes_do_not_see_each_other() {
    let Some(server) = S3Server::start("prefixes_do_not_see_each_other") else {
        return;
    };
    server.create_bucket("larder-prefixes");
    let a = backend(&server, "s3://larder-prefixes/a", None);
    let ab = backend(&server, "s3://larder-prefixes/ab", None);
    let root = backend(&server, "s3://larder-prefixes", None);
    let key = ObjectKey::from_raw("index/0123");
    a.put(&key, b"in a").unwrap();
    assert!(ab.list(Prefix::Index).unwrap().is_empty(), "a/ is not ab/");
    assert!(root.list(Prefix::Index).unwrap().is_empty());
    assert!(matches!(ab.get(&key), Err(Error::NotFound { .. })));
    ab.put(&key, b"in ab").unwrap();
    assert_eq!(a.get(&key).unwrap(), b"in a");
    assert_eq!(ab.get(&key).unwrap(), b"in ab");
    assert_eq!(a.list(Prefix::Index).unwrap()[0].key, key);
}

/// A TCP proxy to the server that, once armed, passes the next PUT on but closes the
/// client's connection instead of relaying the answer: a create-only PUT that landed and
/// whose answer was lost. Its threads end with the test process.
struct LossyProxy {
    port: u16,
    armed: Arc<AtomicBool>,
    swallowed: Arc<AtomicUsize>,
}

impl LossyProxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let swallowed = Arc::new(AtomicUsize::new(0));
        let (a, n) = (armed.clone(), swallowed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (a, n) = (a.clone(), n.clone());
                std::thread::spawn(move || Self::relay(client, upstream, &a, &n));
            }
        });
        Self {
            port,
            armed,
            swallowed,
        }
    }

    /// One connection: requests go up as they come (HTTP/1.1, one at a time); the answer
    /// to an armed PUT is dropped with the connection.
    fn relay(client: TcpStream, upstream: u16, armed: &AtomicBool, swallowed: &AtomicUsize) {
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        let swallow = Arc::new(AtomicBool::new(false));
        let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let sw = swallow.clone();
        let armed_put = |buf: &[u8]| buf.starts_with(b"PUT ") && armed.swap(false, SeqCst);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        let _ = s_out.shutdown(Shutdown::Write);
                        return;
                    }
                    if armed_put(&buf[..n]) {
                        sw.store(true, SeqCst);
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
            let (mut s_in, mut c_out) = (server, client);
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = s_in.read(&mut buf) {
                if n == 0 || swallow.load(SeqCst) {
                    if n > 0 {
                        swallowed.fetch_add(1, SeqCst);
                    }
                    let _ = c_out.shutdown(Shutdown::Both);
                    let _ = s_in.shutdown(Shutdown::Both);
                    return;
                }
                if c_out.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        });
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Drops the answer to the next PUT.
    fn arm(&self) {
        self.armed.store(true, SeqCst);
    }

    fn swallowed(&self) -> usize {
        self.swallowed.load(SeqCst)
    }
}

#[test]
fn a_put_whose_answer_was_lost_is_read_back() {
    let Some(server) = S3Server::start("a_put_whose_answer_was_lost_is_read_back") else {
        return;
    };
    server.create_bucket("larder-lossy");
    let proxy = LossyProxy::start(server.port());
    let b = backend_at(proxy.endpoint(), "s3://larder-lossy/r", None);

    // It landed; the retry finds the key taken, reads it back and sees its own bytes.
    let key = ObjectKey::from_raw("index/0001");
    proxy.arm();
    b.put(&key, b"segment").unwrap();
    assert_eq!(proxy.swallowed(), 1, "the proxy dropped an answer");
    assert_eq!(b.get(&key).unwrap(), b"segment");

    // Other bytes under a taken key stay refused, lost answer or not.
    proxy.arm();
    assert!(matches!(
        b.put(&key, b"other bytes"),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(proxy.swallowed(), 2);
    assert_eq!(b.get(&key).unwrap(), b"segment");

    // The same for a staged object committed with one PUT.
    let pack = ObjectKey::pack(&PackId([7; 32]));
    let mut s = b.stage(Prefix::Packs).unwrap();
    s.write(b"pack bytes").unwrap();
    proxy.arm();
    s.commit(&pack).unwrap();
    assert_eq!(proxy.swallowed(), 3);
    assert_eq!(b.get(&pack).unwrap(), b"pack bytes");
}

/// An HTTP/1.1 proxy to the server that drops every `If-None-Match` header from the requests
/// it passes on: a server that ignores conditional writes, made from one that honours them.
/// Requests are read whole (head, then a `Content-Length` body; the client sends one at a
/// time on a connection) and rewritten; answers go back byte for byte. Its threads end with
/// the test process.
struct StrippingProxy {
    port: u16,
    stripped: Arc<AtomicUsize>,
}

impl StrippingProxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stripped = Arc::new(AtomicUsize::new(0));
        let n = stripped.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let n = n.clone();
                std::thread::spawn(move || Self::relay(client, upstream, &n));
            }
        });
        Self { port, stripped }
    }

    /// One connection: each request goes up without its `If-None-Match`; answers come
    /// back untouched, on their own thread.
    fn relay(client: TcpStream, upstream: u16, stripped: &AtomicUsize) {
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        let (mut s_in, mut c_out) = (server.try_clone().unwrap(), client.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut s_in, &mut c_out);
            let _ = c_out.shutdown(Shutdown::Both);
        });
        let (mut c_in, mut s_out) = (client, server);
        let mut pending = Vec::new();
        while let Some((head, body)) = Self::next_request(&mut c_in, &mut pending) {
            let mut kept = String::with_capacity(head.len());
            for line in head.split_inclusive("\r\n") {
                let name = line.split_once(':').map_or("", |(name, _)| name.trim());
                if name.eq_ignore_ascii_case("if-none-match") {
                    stripped.fetch_add(1, SeqCst);
                } else {
                    kept.push_str(line);
                }
            }
            if s_out.write_all(kept.as_bytes()).is_err() || s_out.write_all(&body).is_err() {
                break;
            }
        }
        let _ = s_out.shutdown(Shutdown::Write);
    }

    /// The next request on the connection: its head (through the blank line) and its body;
    /// `None` once the client closes. `pending` keeps what was read past the request.
    fn next_request(c: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut fill = |pending: &mut Vec<u8>| -> Option<()> {
            let n = c.read(&mut buf).ok().filter(|&n| n > 0)?;
            pending.extend_from_slice(&buf[..n]);
            Some(())
        };
        let head_len = loop {
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            fill(pending)?;
        };
        let head = String::from_utf8(pending.drain(..head_len).collect()).unwrap();
        let header = |want: &str| {
            head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case(want)
                    .then(|| value.trim().to_owned())
            })
        };
        assert!(
            header("transfer-encoding").is_none(),
            "the proxy reads Content-Length bodies only:\n{head}"
        );
        let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
        while pending.len() < len {
            fill(pending)?;
        }
        let body = pending.drain(..len).collect();
        Some((head, body))
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `If-None-Match` headers dropped so far.
    fn stripped(&self) -> usize {
        self.stripped.load(SeqCst)
    }
}

#[test]
fn conditional_writes_are_probed_and_the_probe_removed() {
    let Some(server) = S3Server::start("conditional_writes_are_probed_and_the_probe_removed")
    else {
        return;
    };
    server.create_bucket("larder-probe");
    let direct = backend(&server, "s3://larder-probe/r", None);
    assert_eq!(
        direct.probe_conditional_writes().unwrap(),
        ConditionalWrites::Honoured,
        "moto honours If-None-Match"
    );
    assert_eq!(server.keys("larder-probe"), Vec::<String>::new());

    let proxy = StrippingProxy::start(server.port());
    let stripped = backend_at(proxy.endpoint(), "s3://larder-probe/r", None);
    assert_eq!(
        stripped.probe_conditional_writes().unwrap(),
        ConditionalWrites::Ignored {
            server: proxy.endpoint()
        }
    );
    assert_eq!(
        proxy.stripped(),
        2,
        "both probe puts went through the proxy"
    );
    assert_eq!(
        server.keys("larder-probe"),
        Vec::<String>::new(),
        "the probe is removed when the server fails it too"
    );
    // The probe is the only thing that tells: everything else works through the proxy.
    let key = ObjectKey::from_raw("index/0001");
    stripped.put(&key, b"segment").unwrap();
    assert_eq!(direct.get(&key).unwrap(), b"segment");
}

#[test]
fn init_refuses_a_server_that_ignores_conditional_writes() {
    let Some(server) = S3Server::start("init_refuses_a_server_that_ignores_conditional_writes")
    else {
        return;
    };
    server.create_bucket("larder-conditional");
    let mut init = vec!["init"];
    init.extend(FAST_KDF);
    let no_probe = |keys: &[String]| {
        assert!(
            keys.iter().all(|k| !k.contains(PROBE_PREFIX)),
            "a probe object was left behind: {keys:?}"
        );
    };

    // moto honours If-None-Match: init goes ahead and leaves only the repository.
    let s = S3Env::new(&server, "s3://larder-conditional/honoured");
    s.ok(&init);
    let keys = server.keys("larder-conditional");
    no_probe(&keys);
    assert!(keys.contains(&"honoured/config".to_owned()), "{keys:?}");

    // Behind the stripping proxy it does not: one line, exit 1, nothing written.
    let proxy = StrippingProxy::start(server.port());
    let s = S3Env::new(&server, "s3://larder-conditional/ignored").via(proxy.endpoint());
    let err = assert_failure(&s.run(&init), 1, &[]);
    assert_eq!(
        err.trim_end(),
        format!(
            "larder: error: the S3 server at {} does not honour conditional writes \
             (If-None-Match); locks and create-only objects are not safe there; \
             pass --unsafe-no-conditional-writes to init anyway",
            proxy.endpoint()
        )
    );
    assert_eq!(proxy.stripped(), 2);
    assert_eq!(
        server.keys("larder-conditional"),
        keys,
        "no config, no key slot, no probe under ignored/"
    );

    // Told to, it creates the repository anyway, with a warning, and the repository works.
    let mut unsafe_init = init.clone();
    unsafe_init.push("--unsafe-no-conditional-writes");
    let out = s.run(&unsafe_init);
    assert_success(&out, "init --unsafe-no-conditional-writes");
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("larder: warning: the S3 server at")
            && warning.contains("does not honour conditional writes"),
        "{warning}"
    );
    let keys = server.keys("larder-conditional");
    no_probe(&keys);
    assert!(keys.contains(&"ignored/config".to_owned()), "{keys:?}");
    let id = id_of(&s.snapshot("db", b"dump"));
    assert_eq!(s.ok(&["restore", &id]), b"dump");
}

/// A temporary environment whose repository is `url` on `server`.
struct S3Env {
    env: Env,
    url: String,
    aws: Vec<(&'static str, String)>,
}

impl S3Env {
    fn new(server: &S3Server, url: &str) -> Self {
        Self {
            env: Env::new(),
            url: url.to_owned(),
            aws: server.env(),
        }
    }

    /// The same, with requests sent to `endpoint` (a proxy in front of the server).
    fn via(mut self, endpoint: String) -> Self {
        for (k, v) in &mut self.aws {
            if *k == "AWS_ENDPOINT_URL" {
                *v = endpoint.clone();
            }
        }
        self
    }

    /// `larder` on the S3 repository.
    fn larder(&self) -> assert_cmd::Command {
        let mut c = self.env.larder();
        for v in s3::AWS_SCRUBBED {
            c.env_remove(v);
        }
        c.envs(self.aws.iter().map(|(k, v)| (k, v)))
            .env("LARDER_REPOSITORY", &self.url);
        c
    }

    /// `larder ARGS…`, asserting success; stdout.
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert_success(&out, &args.join(" "));
        out.stdout
    }

    fn run(&self, args: &[&str]) -> Output {
        self.larder().args(args).output().expect("run larder")
    }

    /// `--json snapshot --name NAME --stdin` of `data`; the report.
    fn snapshot(&self, name: &str, data: &[u8]) -> Value {
        let out = self
            .larder()
            .args(["--json", "snapshot", "--name", name, "--stdin"])
            .write_stdin(data.to_vec())
            .output()
            .expect("run larder snapshot");
        assert_success(&out, "snapshot --stdin");
        parse_json(&out.stdout)
    }
}

#[test]
fn every_command_works_on_an_s3_repository() {
    let Some(server) = S3Server::start("every_command_works_on_an_s3_repository") else {
        return;
    };
    server.create_bucket("larder-e2e");
    let s = S3Env::new(&server, "s3://larder-e2e/repos/one");

    // 1 MiB packs, so that forgetting a snapshot leaves whole packs for prune to delete.
    let mut init = vec!["init", "--pack-size", "1M"];
    init.extend(FAST_KDF);
    let out = String::from_utf8(s.ok(&init)).unwrap();
    assert!(out.contains("s3://larder-e2e/repos/one"), "{out}");
    let again = s.run(&init);
    assert_failure(&again, 2, &["already exists", "s3://larder-e2e/repos/one"]);

    // Streams: the second shares a base with the first and deduplicates against it.
    let base = text_bytes(1, 3 << 20);
    let first = [base.as_slice(), &random_bytes(2, 2 << 20)].concat();
    let second = [base.as_slice(), &random_bytes(3, 2 << 20)].concat();
    let r1 = s.snapshot("db", &first);
    let id1 = id_of(&r1);
    let r2 = s.snapshot("db", &second);
    let id2 = id_of(&r2);
    assert!(
        stat(&r2, "new_chunks") * 2 < stat(&r2, "chunks"),
        "the shared base deduplicates: {r2}"
    );
    assert_same_bytes(&s.ok(&["restore", &id1]), &first, "first stream");
    assert_same_bytes(&s.ok(&["restore", &id2]), &second, "second stream");

    // A directory with every kind of entry, restored with its metadata.
    let fx = Fixture::build(&s.env.path("data"));
    let out = s
        .larder()
        .args(["--json", "snapshot", "--name", "files"])
        .arg(&fx.root)
        .output()
        .expect("run larder snapshot PATH");
    assert_success(&out, "snapshot PATH");
    let tree_id = id_of(&parse_json(&out.stdout));
    let target = s.env.path("restore");
    fs::create_dir(&target).unwrap();
    let out = s
        .larder()
        .args(["restore", &tree_id, "--target"])
        .arg(&target)
        .output()
        .expect("run larder restore --target");
    assert_success(&out, "restore --target");
    assert_same_tree(&fx.root, &under(&target, &fx.root), &fx.expect());

    let listed = parse_json(&s.ok(&["--json", "snapshots"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    s.ok(&["check", "--read-data"]);
    s.ok(&["stats"]);
    s.ok(&["ls", &tree_id]);

    // Forget the first stream and prune: its own packs are deleted from the bucket.
    s.ok(&["forget", "--name", "db", "--keep-last", "1"]);
    let pruned = parse_json(&s.ok(&["--json", "prune"]));
    assert!(
        pruned["bytes_freed"].as_u64().unwrap_or(0) > 0,
        "prune freed nothing: {pruned}"
    );
    s.ok(&["check", "--read-data"]);
    assert_same_bytes(
        &s.ok(&["restore", &id2]),
        &second,
        "second stream after prune",
    );

    // The catalog is a cache: rebuilt from the bucket's index, everything still restores.
    s.env.drop_catalog();
    assert_same_bytes(
        &s.ok(&["restore", &id2]),
        &second,
        "after a catalog rebuild",
    );
    let again = s.snapshot("db", &second);
    assert_eq!(stat(&again, "new_chunks"), 0, "{again}");
}

/// `copy` is how an offsite replica is kept: a local repository into a bucket (blobs moved
/// by id, the bucket's repository made with `--copy-chunker-params`), only what is missing on
/// the second run, and from the bucket back into a fresh local repository (re-chunked).
#[test]
fn copy_keeps_an_s3_replica_of_a_local_repository() {
    let Some(server) = S3Server::start("copy_keeps_an_s3_replica_of_a_local_repository") else {
        return;
    };
    server.create_bucket("larder-dr");
    let local = Env::init();
    let first = random_bytes(21, 3 << 20);
    let mut second = first.clone();
    second.splice(500_000..500_000, random_bytes(22, 3000));
    let id1 = local.snapshot_id("db", &first, &[]);

    let dr = S3Env::new(&server, "s3://larder-dr/shop");
    let mut init = vec!["init", "--copy-chunker-params", "--from"];
    let from = local.repo.to_str().unwrap().to_owned();
    init.push(&from);
    init.extend(FAST_KDF);
    dr.ok(&init);
    let r1 = parse_json(&dr.ok(&["--json", "copy", "--from", &from, "--name", "db"]));
    assert_eq!(r1["method"], "blobs", "{r1}");
    assert_eq!(r1["copied"][0]["source"], id1.as_str());
    let full = r1["to_requests"]["bytes_up"].as_u64().unwrap();

    let id2 = local.snapshot_id("db", &second, &[]);
    let r2 = parse_json(&dr.ok(&["--json", "copy", "--from", &from]));
    assert_eq!(r2["copied"][0]["source"], id2.as_str());
    let up = r2["to_requests"]["bytes_up"].as_u64().unwrap();
    assert!(up * 10 < full, "second copy uploaded {up} of {full}: {r2}");
    let none = parse_json(&dr.ok(&["--json", "copy", "--from", &from]));
    assert_eq!(none["copied"].as_array().map(Vec::len), Some(0), "{none}");
    assert_eq!(none["present"].as_array().map(Vec::len), Some(2), "{none}");
    dr.ok(&["check", "--read-data"]);
    let copy2 = r2["copied"][0]["id"].as_str().unwrap().to_owned();
    assert_same_bytes(&dr.ok(&["restore", &copy2]), &second, "replica");

    // Disaster: the bucket back into a new local repository with its own keys.
    let back = Env::init();
    let mut cmd = back.larder();
    for v in s3::AWS_SCRUBBED {
        cmd.env_remove(v);
    }
    let out = cmd
        .envs(server.env())
        .args(["--json", "copy", "--from", "s3://larder-dr/shop"])
        .output()
        .expect("run larder copy from S3");
    assert_success(&out, "copy --from s3://");
    let r = parse_json(&out.stdout);
    assert_eq!(r["method"], "rechunk", "{r}");
    assert_eq!(r["copied"].as_array().map(Vec::len), Some(2), "{r}");
    assert!(r["from_requests"]["get"].as_u64().unwrap() > 0, "{r}");
    let restored = back.restore(&["latest", "--name", "db"]);
    assert_same_bytes(&restored, &second, "copied back from the replica");
}

#[test]
fn a_wrong_bucket_is_one_line_naming_it() {
    let Some(server) = S3Server::start("a_wrong_bucket_is_one_line_naming_it") else {
        return;
    };
    let s = S3Env::new(&server, "s3://larder-no-such-bucket/repo");
    let mut init = vec!["init"];
    init.extend(FAST_KDF);
    for args in [init, vec!["snapshots"]] {
        let out = s.run(&args);
        assert_failure(
            &out,
            1,
            &["bucket `larder-no-such-bucket` does not exist", "s3://"],
        );
    }
    // The bucket is there, the repository is not: exit 10 as for a local path.
    server.create_bucket("larder-empty");
    let s = S3Env::new(&server, "s3://larder-empty/nothing/here");
    assert_failure(
        &s.run(&["snapshots"]),
        10,
        &["no repository at s3://larder-empty/nothing/here"],
    );
}

#[test]
fn an_unreachable_endpoint_fails_fast_in_one_line() {
    // No server needed: nothing listens on this port.
    let port = s3::free_port().unwrap();
    let env = Env::new();
    let start = Instant::now();
    let mut larder = env.larder();
    for v in s3::AWS_SCRUBBED {
        larder.env_remove(v);
    }
    let out = larder
        .env("LARDER_REPOSITORY", "s3://larder-e2e/repo")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY)
        .env("AWS_REGION", s3::REGION)
        .env("LARDER_S3_RETRIES", "1")
        .arg("snapshots")
        .output()
        .expect("run larder snapshots");
    let took = start.elapsed();
    assert_failure(
        &out,
        1,
        &["s3://larder-e2e/repo/config", &format!("127.0.0.1:{port}")],
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // A location that is no S3 URL is a usage error, before any request.
    let out = env
        .larder()
        .env("LARDER_REPOSITORY", "s3://Bad_Bucket/x")
        .arg("snapshots")
        .output()
        .unwrap();
    assert_failure(&out, 2, &["Bad_Bucket"]);
}
