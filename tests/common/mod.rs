//! Shared helpers for the end-to-end tests: a temporary repository and cache, the real
//! `larder` binary with its environment set, deterministic test streams, and damage helpers.

#![allow(dead_code)] // each test crate uses its own subset
#![allow(clippy::panic, reason = "test helpers fail the test by panicking")]

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// The `larder` binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_larder"))
}

/// Argon2id at the floor, so every open in a test costs milliseconds.
pub const FAST_KDF: [&str; 6] = [
    "--kdf-memory",
    "19",
    "--kdf-iterations",
    "2",
    "--kdf-parallelism",
    "1",
];

/// Longest any single `larder` run may take in these tests (debug build, 2 slow cores).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The password every `Env` starts with.
pub const PASSWORD: &str = "correct horse battery staple";

/// Variables that would change what the binary does if the developer's shell had them set.
const SCRUBBED: [&str; 16] = [
    "LARDER_FROM_REPOSITORY",
    "LARDER_FROM_PASSWORD",
    "LARDER_FROM_PASSWORD_FILE",
    "LARDER_FROM_PASSWORD_COMMAND",
    "LARDER_FROM_S3_ENDPOINT",
    "LARDER_REPOSITORY",
    "LARDER_LOCK_WAIT",
    "LARDER_PASSWORD",
    "LARDER_PASSWORD_FILE",
    "LARDER_PASSWORD_COMMAND",
    "LARDER_NEW_PASSWORD",
    "LARDER_CACHE_DIR",
    "LARDER_CONFIG",
    "LARDER_METRICS_FILE",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// A temporary directory holding a repository location (`repo/`), a catalog cache
/// (`cache/`) and scratch files; removed on drop.
pub struct Env {
    /// The temporary directory itself.
    pub tmp: TempDir,
    /// The repository location (not created until `init`).
    pub repo: PathBuf,
    /// `LARDER_CACHE_DIR`.
    pub cache: PathBuf,
}

impl Env {
    /// A fresh environment with no repository yet.
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("larder-e2e-")
            .tempdir()
            .expect("create temp dir");
        let repo = tmp.path().join("repo");
        let cache = tmp.path().join("cache");
        Self { tmp, repo, cache }
    }

    /// A fresh environment with an initialised repository (floor KDF, default chunking).
    pub fn init() -> Self {
        Self::init_with(&[])
    }

    /// A fresh environment initialised with extra `init` flags.
    pub fn init_with(extra: &[&str]) -> Self {
        let env = Self::new();
        env.larder()
            .arg("init")
            .args(FAST_KDF)
            .args(extra)
            .assert()
            .success();
        assert!(env.repo.join("config").is_file(), "init wrote no config");
        env
    }

    /// A path inside the temporary directory (for inputs and restore outputs).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `larder` with the repository, password and cache set through the environment.
    /// Killed after [`TIMEOUT`], so a hang fails the test instead of stalling the suite.
    pub fn larder(&self) -> Command {
        let mut c = Command::from_std(self.std_larder());
        c.timeout(TIMEOUT);
        c
    }

    /// The same as a `std::process::Command`, for spawning processes concurrently.
    pub fn std_larder(&self) -> std::process::Command {
        let mut c = std::process::Command::new(bin());
        for v in SCRUBBED {
            c.env_remove(v);
        }
        c.env("LARDER_REPOSITORY", &self.repo)
            .env("LARDER_PASSWORD", PASSWORD)
            .env("LARDER_CACHE_DIR", &self.cache);
        c
    }

    /// `bash -c SCRIPT` with the same environment and `$LARDER` naming the binary, stdout
    /// and stderr piped (collect with [`wait_output`]). Scripts should run larder under
    /// `timeout` so a hang shows as exit 124 instead of stalling the suite.
    pub fn shell(&self, script: &str) -> std::process::Command {
        let mut c = self.std_larder();
        let larder_env: Vec<_> = c
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
            .collect();
        let mut sh = std::process::Command::new("bash");
        for (k, v) in larder_env {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        c = sh;
        c.arg("-c")
            .arg(script)
            .env("LARDER", bin())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    }

    /// `larder --json snapshot --name NAME --stdin EXTRA…` fed `data`; asserts success and
    /// returns the parsed report.
    pub fn snapshot(&self, name: &str, data: &[u8], extra: &[&str]) -> Value {
        let out = self
            .larder()
            .args(["--json", "snapshot", "--name", name, "--stdin"])
            .args(extra)
            .write_stdin(data.to_vec())
            .output()
            .expect("run larder snapshot");
        assert_success(&out, "snapshot");
        parse_json(&out.stdout)
    }

    /// `larder --json snapshot --name NAME PATHS…`; asserts success and returns the report.
    pub fn snapshot_paths(&self, name: &str, paths: &[&Path]) -> Value {
        let out = self
            .larder()
            .args(["--json", "snapshot", "--name", name])
            .args(paths)
            .output()
            .expect("run larder snapshot");
        assert_success(&out, "snapshot");
        parse_json(&out.stdout)
    }

    /// Like [`Env::snapshot`], returning only the new snapshot's id.
    pub fn snapshot_id(&self, name: &str, data: &[u8], extra: &[&str]) -> String {
        id_of(&self.snapshot(name, data, extra))
    }

    /// `larder --json snapshots EXTRA…`, parsed.
    pub fn snapshots(&self, extra: &[&str]) -> Value {
        let out = self
            .larder()
            .args(["--json", "snapshots"])
            .args(extra)
            .output()
            .expect("run larder snapshots");
        assert_success(&out, "snapshots");
        parse_json(&out.stdout)
    }

    /// Ids of every snapshot, in listing order.
    pub fn snapshot_ids(&self) -> Vec<String> {
        match self.snapshots(&[]) {
            Value::Array(list) => list.iter().map(id_of).collect(),
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// `larder restore ARGS…` to stdout; asserts success and returns the bytes.
    pub fn restore(&self, args: &[&str]) -> Vec<u8> {
        let out = self
            .larder()
            .arg("restore")
            .args(args)
            .output()
            .expect("run larder restore");
        assert_success(&out, "restore");
        out.stdout
    }

    /// `larder restore ARGS… -o FILE` into a fresh file; asserts success, that nothing went
    /// to stdout, and returns the file's bytes.
    pub fn restore_to_file(&self, args: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir_in(self.tmp.path()).expect("create restore dir");
        let file = dir.path().join("restored.bin");
        let out = self
            .larder()
            .arg("restore")
            .args(args)
            .arg("-o")
            .arg(&file)
            .output()
            .expect("run larder restore -o");
        assert_success(&out, "restore -o");
        assert!(out.stdout.is_empty(), "restore -o wrote to stdout");
        let names = dir_names(dir.path());
        assert_eq!(
            names,
            ["restored.bin"],
            "restore -o left other files behind"
        );
        std::fs::read(&file).expect("read restored file")
    }

    /// `larder cat ARGS…`, parsed as JSON.
    pub fn cat(&self, args: &[&str]) -> Value {
        let out = self
            .larder()
            .arg("cat")
            .args(args)
            .output()
            .expect("run larder cat");
        assert_success(&out, "cat");
        parse_json(&out.stdout)
    }

    /// Every stored object under a repository folder (`packs`, `index`, `snapshots`,
    /// `keys`), recursively, ignoring temporary files; sorted.
    pub fn objects(&self, folder: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut dirs = vec![self.repo.join(folder)];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("list repository folder") {
                let p = e.expect("read dir entry").path();
                if p.is_dir() {
                    dirs.push(p);
                } else if !file_name(&p).starts_with(".tmp-") {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// The single object under `folder`; asserts there is exactly one.
    pub fn only_object(&self, folder: &str) -> PathBuf {
        let mut all = self.objects(folder);
        assert_eq!(
            all.len(),
            1,
            "expected exactly one object in {folder}/: {all:?}"
        );
        all.remove(0)
    }

    /// Removes the whole catalog cache directory.
    pub fn drop_catalog(&self) {
        std::fs::remove_dir_all(&self.cache).expect("remove cache dir");
        assert!(!self.cache.exists());
    }

    /// Where the catalog of this repository lives.
    pub fn catalog_path(&self) -> PathBuf {
        let config = self.cat(&["config"]);
        let repo_id = config["repo_id"]
            .as_str()
            .unwrap_or_else(|| panic!("cat config has no repo_id: {config}"));
        self.cache.join(repo_id).join("catalog.sqlite")
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

/// What a test needs from outside (a server, a program): `Some` when `started` is `Ok`.
/// Without it the test fails when `CI` is set (CI must run every test) and is otherwise
/// skipped with a loud note on stderr, never passed in silence. `what` names the missing
/// thing, `install` how to get it.
pub fn required<T>(test: &str, what: &str, install: &str, started: Result<T, String>) -> Option<T> {
    let why = match started {
        Ok(t) => return Some(t),
        Err(why) => why,
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {what}: {why}");
    }
    // Straight to stderr: the test harness captures `eprintln!` of a passing test, and this
    // note must be seen.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "\n!!!!! SKIPPED {test}: {what}: {why}\n\
             !!!!! install it with .ci/install-deps.sh ({install}); with CI set this is a failure\n\n"
        ),
    );
    None
}

/// The last path component as a string.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Names in a directory, sorted.
pub fn dir_names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .expect("list dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// `"id"` of a snapshot report or listing entry.
pub fn id_of(v: &Value) -> String {
    let id = v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"id\" in {v}"))
        .to_owned();
    assert_eq!(id.len(), 64, "id is not 64 hex digits: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    id
}

/// A `u64` field of the `"snapshot"` object of a report.
pub fn stat(report: &Value, field: &str) -> u64 {
    report["snapshot"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no snapshot.{field} in {report}"))
}

/// Parses stdout as JSON, showing it on failure.
pub fn parse_json(stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// Asserts a run succeeded, printing its stderr otherwise.
pub fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "larder {what} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_panic(&out.stderr);
}

/// Asserts a run failed with `code` and one `larder: error: …` line that contains every
/// string in `needles`; returns the stderr text.
pub fn assert_failure(out: &std::process::Output, code: i32, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}, got {}; stderr:\n{err}",
        out.status
    );
    assert_no_panic(&out.stderr);
    assert_error_line(&err);
    for n in needles {
        assert!(err.contains(n), "stderr does not mention `{n}`:\n{err}");
    }
    err
}

/// Asserts stderr is exactly one `larder: error: …` line.
pub fn assert_error_line(err: &str) {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line on stderr, got:\n{err}"
    );
    assert!(
        lines[0].starts_with("larder: error: "),
        "stderr line is not `larder: error: …`:\n{err}"
    );
}

/// Asserts nothing on stderr says the process panicked.
pub fn assert_no_panic(stderr: &[u8]) {
    let err = String::from_utf8_lossy(stderr);
    assert!(!err.contains("panicked"), "larder panicked:\n{err}");
}

/// Deterministic incompressible bytes: the BLAKE3 XOF of the seed.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(b"larder e2e random");
    h.update(&seed.to_le_bytes());
    let mut out = vec![0u8; len];
    h.finalize_xof().fill(&mut out);
    out
}

/// xorshift64*: a small deterministic generator for text-like data.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A random element of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.below(items.len() as u64);
        items[usize::try_from(i).expect("index below a slice length")]
    }
}

const WORDS: [&str; 48] = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "pending",
    "shipped",
    "returned",
    "cancelled",
    "invoice",
    "customer",
    "warehouse",
    "berlin",
    "lisbon",
    "osaka",
    "toronto",
    "nairobi",
    "lima",
    "quito",
    "oslo",
    "widget",
    "gadget",
    "sprocket",
    "flange",
    "gasket",
    "bracket",
    "washer",
];

/// Deterministic text that looks like a `pg_dump` COPY section: tab-separated rows of
/// numbers, words and dates, with an occasional table header. Compressible, but with no
/// long repeats, so chunks deduplicate only where streams really share content.
pub fn text_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(len + 256);
    let mut table = 0u32;
    while s.len() < len {
        if rng.below(2000) == 0 || s.is_empty() {
            table += 1;
            let _ = write!(
                s,
                "\\.\n\nCOPY public.t{table}_{} (id, who, status, amount, day, note) FROM stdin;\n",
                rng.pick(&WORDS)
            );
        }
        let id = rng.next_u64() % 100_000_000;
        let who = rng.pick(&WORDS);
        let status = rng.pick(&WORDS);
        let cents = rng.below(10_000_000);
        let day = 1 + rng.below(28);
        let _ = write!(
            s,
            "{id}\t{who}\t{status}\t{}.{:02}\t2026-11-{day:02}\t",
            cents / 100,
            cents % 100
        );
        for _ in 0..rng.below(6) {
            s.push_str(rng.pick(&WORDS));
            s.push(' ');
        }
        s.push('\n');
    }
    let mut b = s.into_bytes();
    b.truncate(len);
    b
}

/// Flips every bit of the byte at `offset` of a file.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut b = std::fs::read(path).expect("read file to damage");
    assert!(
        offset < b.len(),
        "{} is only {} bytes",
        path.display(),
        b.len()
    );
    b[offset] ^= 0xff;
    std::fs::write(path, b).expect("write damaged file");
}

/// Cuts a file to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open file to truncate");
    f.set_len(len).expect("truncate");
}

/// Asserts `a == b` for byte streams without dumping megabytes on failure.
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first_diff = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: restored {} bytes, expected {}; first difference at byte {first_diff}",
        got.len(),
        want.len()
    );
}

/// Collects a spawned child's stdout and stderr (both must be piped) and waits for it,
/// killing it and failing the test if it runs longer than [`TIMEOUT`].
pub fn wait_output(mut child: Child, what: &str) -> Output {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("poll child") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {TIMEOUT:?} (hung?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}
