//! End-to-end tests of the scheduled-job features (issue 6) through the real binary: the
//! configuration file and `larder run`, dump checks and quarantine, producer timeouts,
//! retention around quarantined snapshots, `status` freshness, restore drills, the metrics
//! textfile and notifications (to an HTTP server on 127.0.0.1 in a test thread).

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Variables of the developer's shell that `Env` does not scrub but that would change what
/// these tests run: another configuration or metrics file, or a proxy for the notifications.
const ALSO_SCRUBBED: [&str; 8] = [
    "LARDER_CONFIG",
    "LARDER_METRICS_FILE",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// `larder` for `env` (repository, password and cache from the environment), with none of
/// [`ALSO_SCRUBBED`].
fn larder(env: &Env) -> assert_cmd::Command {
    let mut c = env.larder();
    for v in ALSO_SCRUBBED {
        c.env_remove(v);
    }
    c
}

/// A TOML string or array of strings (JSON's syntax for both is TOML's).
fn toml(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("strings serialize to JSON")
}

/// A path as the UTF-8 string configuration files and metric labels hold.
fn text(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// `[series.NAME]` with a producer command and more keys (`extra`, TOML lines).
fn series(name: &str, command: &[&str], extra: &str) -> String {
    format!("[series.{name}]\ncommand = {}\n{extra}\n", toml(&command))
}

/// The 1-based line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix:?} in:\n{text}"))
        + 1
}

/// A repository and a configuration file naming it: what a cron job has. The password and
/// cache still come from the environment.
struct Job {
    env: Env,
    config: PathBuf,
}

impl Job {
    /// A new repository, and a configuration of `[repository] url` followed by `body`.
    fn new(body: &str) -> Job {
        let env = Env::init();
        let job = Job {
            config: env.path("larder.toml"),
            env,
        };
        job.write(body);
        job
    }

    /// Rewrites the configuration: `[repository] url`, then `body`.
    fn write(&self, body: &str) {
        let text = format!(
            "[repository]\nurl = {}\n\n{body}",
            toml(&text(&self.env.repo))
        );
        std::fs::write(&self.config, text).expect("write larder.toml");
    }

    /// The configuration as written.
    fn text(&self) -> String {
        std::fs::read_to_string(&self.config).expect("read larder.toml")
    }

    /// `larder --config larder.toml`, with no `LARDER_REPOSITORY`: the file says where.
    fn larder(&self) -> assert_cmd::Command {
        let mut c = larder(&self.env);
        c.env_remove("LARDER_REPOSITORY");
        c.arg("--config").arg(&self.config);
        c
    }

    /// `larder --json run ARGS…`: the output and the parsed report.
    fn run(&self, args: &[&str]) -> (Output, Value) {
        let out = self
            .larder()
            .args(["--json", "run"])
            .args(args)
            .output()
            .expect("run larder run");
        assert_no_panic(&out.stderr);
        let report = parse_json(&out.stdout);
        (out, report)
    }

    /// `larder --json run SERIES`, which must succeed; its entry of the report.
    fn run_ok(&self, series: &str) -> Value {
        let (out, report) = self.run(&[series]);
        assert_success(&out, &format!("run {series}"));
        let entry = report["series"][0].clone();
        assert_eq!(entry["series"], json!(series), "{report}");
        assert_eq!(entry["ok"], json!(true), "{report}");
        entry
    }

    /// `larder --json status ARGS…`: its exit code and report.
    fn status(&self, args: &[&str]) -> (Option<i32>, Value) {
        let out = self
            .larder()
            .args(["--json", "status"])
            .args(args)
            .output()
            .expect("run larder status");
        assert_no_panic(&out.stderr);
        (out.status.code(), parse_json(&out.stdout))
    }
}

/// The entry of `series` in a `status --json` report.
fn series_status<'a>(report: &'a Value, series: &str) -> &'a Value {
    report["status"]["series"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["series"] == json!(series)))
        .unwrap_or_else(|| panic!("no series {series} in status: {report}"))
}

/// `"snapshot"` of a `run` report entry, a 64-hex-digit id.
fn run_snapshot(entry: &Value) -> String {
    id_of(&json!({ "id": entry["snapshot"] }))
}

/// Ids of the snapshots of `name`, oldest first.
fn ids_of(env: &Env, name: &str) -> Vec<String> {
    match env.snapshots(&["--name", name]) {
        Value::Array(list) => list.iter().map(id_of).collect(),
        other => panic!("snapshots --json is not an array: {other}"),
    }
}

/// The listing entry of snapshot `id`.
fn listed(env: &Env, id: &str) -> Value {
    env.snapshots(&[])
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == json!(id)).cloned())
        .unwrap_or_else(|| panic!("snapshot {id} is not listed"))
}

/// A plain pg_dump script: header, text rows, and the completion trailer pg_dump writes.
fn pg_dump(seed: u64, len: usize) -> Vec<u8> {
    let mut d = b"--\n-- PostgreSQL database dump\n--\n\n".to_vec();
    d.extend_from_slice(&text_bytes(seed, len));
    d.extend_from_slice(b"\n\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n");
    d
}

/// `snapshot --stdin --verify pg_dump` of `data`, which must be kept quarantined: exit 13,
/// one error line. Returns the snapshot's id.
fn quarantined(env: &Env, name: &str, data: &[u8], extra: &[&str]) -> String {
    let out = larder(env)
        .args([
            "--json", "snapshot", "--stdin", "--verify", "pg_dump", "--name", name,
        ])
        .args(extra)
        .write_stdin(data.to_vec())
        .output()
        .expect("run larder snapshot");
    assert_failure(&out, 13, &["QUARANTINED", "pg_dump"]);
    let report = parse_json(&out.stdout);
    assert_eq!(
        report["snapshot"]["quarantined"]["check"], "pg_dump",
        "{report}"
    );
    id_of(&report)
}

/// Whether process `pid` is still running (a zombie waiting to be reaped is not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        // `pid (comm) S …`: the state follows the last `)`.
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// Configuration and `larder run`
// ---------------------------------------------------------------------------------------

#[test]
fn run_with_a_config_writes_a_snapshot_and_reports_it() {
    let job = Job::new("");
    let input = job.env.path("dump.sql");
    let data = text_bytes(1, 200_000);
    std::fs::write(&input, &data).expect("write input");
    job.write(&series(
        "shop",
        &["cat", text(&input)],
        "tags = [\"nightly\"]",
    ));

    let out = job
        .larder()
        .args(["run", "shop"])
        .output()
        .expect("run larder run");
    assert_success(&out, "run shop (text)");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("shop: snapshot "), "{said}");

    let entry = job.run_ok("shop");
    let id = run_snapshot(&entry);
    assert_eq!(entry["exit_code"], json!(0));
    assert_eq!(entry["bytes_read"], json!(data.len()));
    assert_eq!(entry["quarantined"], Value::Null);
    assert_eq!(ids_of(&job.env, "shop").len(), 2, "one snapshot per run");
    let snap = listed(&job.env, &id);
    assert_eq!(snap["snapshot"]["tags"], json!(["nightly"]));
    assert_eq!(snap["snapshot"]["source"]["kind"], "command");
    assert_same_bytes(
        &job.env.restore(&[&id]),
        &data,
        "restore the run's snapshot",
    );
}

#[test]
fn flags_and_environment_win_over_the_config_file() {
    let env = Env::init();
    let elsewhere = env.path("elsewhere");
    let config = env.path("larder.toml");
    std::fs::write(
        &config,
        format!(
            "[repository]\nurl = {}\n\n{}",
            toml(&text(&elsewhere)),
            series("s", &["echo", "row"], "")
        ),
    )
    .expect("write larder.toml");
    let run = |flags: &[&str], repo_env: bool| {
        let mut c = larder(&env);
        if !repo_env {
            c.env_remove("LARDER_REPOSITORY");
        }
        c.args(flags)
            .args(["run", "s"])
            .output()
            .expect("run larder run")
    };

    // The file's url alone: no repository there.
    let out = run(&["--config", text(&config)], false);
    assert_failure(&out, 10, &[text(&elsewhere)]);
    assert!(!elsewhere.exists());

    // --repo wins over the file.
    let out = run(
        &["--config", text(&config), "--repo", text(&env.repo)],
        false,
    );
    assert_success(&out, "run --repo");
    assert_eq!(ids_of(&env, "s").len(), 1);

    // So does LARDER_REPOSITORY.
    let out = run(&["--config", text(&config)], true);
    assert_success(&out, "run with LARDER_REPOSITORY");
    assert_eq!(ids_of(&env, "s").len(), 2);
    assert!(!elsewhere.exists(), "the file's url was used");
}

#[test]
fn larder_config_names_the_file() {
    let job = Job::new(&series("s", &["echo", "row"], ""));
    let out = larder(&job.env)
        .env_remove("LARDER_REPOSITORY")
        .env("LARDER_CONFIG", &job.config)
        .args(["--json", "run", "s"])
        .output()
        .expect("run larder run");
    assert_success(&out, "run with LARDER_CONFIG");
    let id = run_snapshot(&parse_json(&out.stdout)["series"][0]);
    assert_eq!(ids_of(&job.env, "s"), [id]);
}

#[test]
fn unknown_config_key_fails_naming_the_key_and_its_line() {
    let job = Job::new(&format!(
        "{}{}",
        series("a", &["echo", "a"], ""),
        series(
            "b",
            &["echo", "b"],
            "keep = { last = 3 }\nmax_agee = \"25h\""
        )
    ));
    let line = line_of(&job.text(), "max_agee");
    assert!(line > 5, "the key is not near the top: {line}");
    let out = job
        .larder()
        .args(["run", "a"])
        .output()
        .expect("run larder");
    assert_failure(
        &out,
        2,
        &["max_agee", &format!("line {line}"), "larder.toml"],
    );
    assert!(job.env.snapshot_ids().is_empty(), "a run started anyway");

    // Unknown sections too, and for any command, not only `run`.
    job.write("[series.a]\ncommand = [\"true\"]\n\n[metrcs]\ntextfile = \"/tmp/x\"\n");
    let out = job.larder().arg("snapshots").output().expect("run larder");
    assert_failure(
        &out,
        2,
        &[
            "metrcs",
            &format!("line {}", line_of(&job.text(), "[metrcs]")),
        ],
    );
}

#[test]
fn bad_duration_in_config_names_the_value() {
    let job = Job::new(&series("a", &["echo", "a"], "\ntimeout = \"2 weeks\""));
    let line = line_of(&job.text(), "timeout");
    let out = job
        .larder()
        .args(["run", "a"])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["2 weeks", &format!("line {line}")]);
    assert!(job.env.snapshot_ids().is_empty());
}

#[test]
fn run_without_a_config_names_the_config_flag() {
    let env = Env::init();
    let out = larder(&env)
        .args(["run", "s"])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["--config", "LARDER_CONFIG"]);
    let out = larder(&env)
        .args(["run", "--all"])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["--config"]);
}

#[test]
fn run_of_an_unknown_series_names_the_known_ones() {
    let job = Job::new(&format!(
        "{}{}",
        series("alpha", &["echo", "a"], ""),
        series("beta", &["echo", "b"], "")
    ));
    let out = job
        .larder()
        .args(["run", "alpha", "nope"])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["nope", "alpha, beta"]);
    assert!(
        job.env.snapshot_ids().is_empty(),
        "alpha ran before the check"
    );
}

// ---------------------------------------------------------------------------------------
// Dump checks and quarantine
// ---------------------------------------------------------------------------------------

#[test]
fn stream_without_the_pg_dump_trailer_is_quarantined_and_never_latest() {
    let env = Env::init();
    let good = pg_dump(2, 100_000);
    let report = env.snapshot("db", &good, &["--verify", "pg_dump"]);
    let good_id = id_of(&report);
    assert!(report["snapshot"].get("quarantined").is_none(), "{report}");

    // The same dump cut before its trailer.
    let cut = &good[..good.len() - 50];
    let bad_id = quarantined(&env, "db", cut, &[]);
    let entry = listed(&env, &bad_id);
    assert_eq!(entry["snapshot"]["quarantined"]["check"], "pg_dump");
    let why = entry["snapshot"]["quarantined"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("completion trailer"), "{entry}");
    assert!(
        listed(&env, &good_id)["snapshot"]
            .get("quarantined")
            .is_none()
    );

    let out = larder(&env)
        .arg("snapshots")
        .output()
        .expect("run larder snapshots");
    assert_success(&out, "snapshots");
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with(&bad_id[..8]))
        .unwrap_or_else(|| panic!("{bad_id} not in:\n{table}"));
    assert!(row.contains("QUARANTINED"), "{row}");
    let good_row = table.lines().find(|l| l.starts_with(&good_id[..8]));
    assert!(
        good_row.is_some_and(|r| !r.contains("QUARANTINED")),
        "{table}"
    );

    // `latest` passes over it; its id still restores it.
    assert_same_bytes(&env.restore(&["--name", "db"]), &good, "restore --name db");
    assert_same_bytes(&env.restore(&["latest"]), &good, "restore latest");
    assert_same_bytes(
        &env.restore(&[&bad_id]),
        cut,
        "restore the quarantined one by id",
    );
}

#[test]
fn verify_accepts_only_known_kinds_and_only_streams() {
    let env = Env::init();
    let out = larder(&env)
        .args(["snapshot", "--stdin", "--name", "db", "--verify", "bogus"])
        .write_stdin(pg_dump(3, 1000))
        .output()
        .expect("run larder");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bogus") && err.contains("pg_dump_custom"),
        "{err}"
    );

    let dir = env.path("files");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = larder(&env)
        .args(["snapshot", "--name", "files", "--verify", "pg_dump"])
        .arg(&dir)
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["--verify"]);
    assert!(env.snapshot_ids().is_empty());

    // `none` checks nothing.
    let report = env.snapshot("db", b"not a dump\n", &["--verify", "none"]);
    assert!(report["snapshot"].get("quarantined").is_none(), "{report}");
}

#[test]
fn compressed_stream_is_kept_with_a_warning() {
    let env = Env::init();
    let plain = env.path("dump.sql");
    std::fs::write(&plain, text_bytes(4, 100_000)).expect("write input");
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .arg(&plain)
        .output()
        .expect("run gzip");
    assert!(gz.status.success() && gz.stdout.starts_with(&[0x1f, 0x8b]));

    let out = larder(&env)
        .args(["--json", "snapshot", "--stdin", "--name", "db"])
        .write_stdin(gz.stdout.clone())
        .output()
        .expect("run larder snapshot");
    assert_success(&out, "snapshot of a gzip stream");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("larder: warning:") && err.contains("compressed"),
        "{err}"
    );
    let report = parse_json(&out.stdout);
    let warnings = report["snapshot"]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("compressed"))
    );
    assert!(
        report["snapshot"].get("quarantined").is_none(),
        "a warning, not a failure"
    );
    let id = id_of(&report);
    assert_eq!(listed(&env, &id)["snapshot"]["warnings"], json!(warnings));
    assert_same_bytes(&env.restore(&[&id]), &gz.stdout, "restore the gzip stream");

    // `status` and the metrics say so too.
    let metrics = env.path("larder.prom");
    let out = larder(&env)
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["--json", "status"])
        .output()
        .expect("run larder status");
    assert_success(&out, "status");
    let st = parse_json(&out.stdout);
    assert_eq!(
        series_status(&st, "db")["last_good"]["warnings"],
        json!(warnings),
        "{st}"
    );
    let m = std::fs::read_to_string(&metrics).expect("read the metrics file");
    assert_eq!(
        sample(&m, "larder_warnings", text(&env.repo), "db"),
        Some(1.0),
        "{m}"
    );

    // The plain text gets no warning.
    let report = env.snapshot("db2", &text_bytes(4, 100_000), &[]);
    assert!(report["snapshot"].get("warnings").is_none(), "{report}");
}

#[test]
fn stream_under_half_the_previous_one_of_its_series_gets_a_warning() {
    let env = Env::init();
    let first = env.snapshot("db", &text_bytes(5, 100_000), &[]);
    assert!(first["snapshot"].get("warnings").is_none(), "{first}");
    // Another series' size does not count.
    let other = env.snapshot("small", &text_bytes(6, 10_000), &[]);
    assert!(other["snapshot"].get("warnings").is_none(), "{other}");
    // Down to 60 %: no warning yet.
    let fine = env.snapshot("db", &text_bytes(7, 60_000), &[]);
    assert!(fine["snapshot"].get("warnings").is_none(), "{fine}");

    let out = larder(&env)
        .args(["--json", "snapshot", "--stdin", "--name", "db"])
        .write_stdin(text_bytes(8, 20_000))
        .output()
        .expect("run larder snapshot");
    assert_success(&out, "short snapshot");
    let report = parse_json(&out.stdout);
    let warnings = report["snapshot"]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{report}");
    let w = warnings[0].as_str().unwrap_or_default();
    assert!(w.contains("less than half") && w.contains("60000"), "{w}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("less than half"));
}

// ---------------------------------------------------------------------------------------
// Producer timeouts
// ---------------------------------------------------------------------------------------

/// `snapshot --name t FLAGS -- sh -c SCRIPT`: its output and how long it took.
fn timed_snapshot(env: &Env, flags: &[&str], script: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = larder(env)
        .args(["snapshot", "--name", "t"])
        .args(flags)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("run larder snapshot");
    (out, started.elapsed())
}

#[test]
fn timeout_kills_the_producer_and_writes_no_snapshot() {
    let env = Env::init();
    let (out, took) = timed_snapshot(&env, &["--timeout", "1s"], "echo x; sleep 30");
    assert_failure(&out, 13, &["timeout (1s)", "killed", "no snapshot"]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        took >= Duration::from_secs(1),
        "killed before its timeout: {took:?}"
    );
    assert!(env.snapshot_ids().is_empty());

    // A producer that finishes in time is not affected.
    let (out, _) = timed_snapshot(&env, &["--timeout", "1m"], "echo x");
    assert_success(&out, "snapshot within its timeout");
    assert_eq!(env.snapshot_ids().len(), 1);
}

#[test]
fn stall_timeout_kills_a_silent_producer() {
    let env = Env::init();
    let (out, took) = timed_snapshot(&env, &["--stall-timeout", "1s"], "echo x; sleep 30");
    assert_failure(&out, 13, &["stall_timeout", "1s", "no snapshot"]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(env.snapshot_ids().is_empty());

    // Writing often enough keeps a slow producer alive past the stall limit.
    let (out, took) = timed_snapshot(
        &env,
        &["--stall-timeout", "1s"],
        "for i in 1 2 3 4; do echo $i; sleep 0.4; done",
    );
    assert_success(&out, "slow but steady producer");
    assert!(took >= Duration::from_millis(1500), "took {took:?}");
    assert_eq!(env.snapshot_ids().len(), 1);
}

#[test]
fn timeout_kills_the_producers_whole_process_group() {
    let env = Env::init();
    let pid_file = env.path("sleep.pid");
    let script = format!("sleep 30 & echo $! > '{}'; echo x; wait", text(&pid_file));
    let (out, took) = timed_snapshot(&env, &["--timeout", "1s"], &script);
    assert_failure(&out, 13, &["timeout"]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("read pid file")
        .trim()
        .parse()
        .expect("a pid");
    // SIGTERM went to the group when the timeout fired; the orphan may take a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    while running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !running(pid),
        "the producer's background child {pid} survived"
    );
    assert!(env.snapshot_ids().is_empty());
}

#[test]
fn timeout_fails_the_snapshot_even_when_the_leader_exited_first() {
    // The shell exits 0 at once; the stream comes from its background job, which the
    // timeout kills half way. The stream is cut: no snapshot, a clear error, exit 13.
    let env = Env::init();
    let (out, took) = timed_snapshot(
        &env,
        &["--timeout", "1s"],
        "(echo first half; sleep 30; echo second half) &",
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_failure(&out, 13, &["timeout (1s)", "no snapshot"]);
    assert!(
        env.snapshot_ids().is_empty(),
        "a stream cut by the timeout was saved as a snapshot"
    );

    // The same with the stall limit.
    let (out, took) = timed_snapshot(
        &env,
        &["--stall-timeout", "1s"],
        "(echo first half; sleep 30; echo second half) &",
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_failure(&out, 13, &["stall_timeout", "no snapshot"]);
    assert!(
        env.snapshot_ids().is_empty(),
        "a stream cut by the stall limit was saved as a snapshot"
    );
}

#[test]
fn timeouts_need_a_producer_command() {
    let env = Env::init();
    for flag in ["--timeout", "--stall-timeout"] {
        let out = larder(&env)
            .args(["snapshot", "--stdin", "--name", "t", flag, "1s"])
            .write_stdin(&b"data"[..])
            .output()
            .expect("run larder snapshot");
        assert_failure(&out, 2, &[flag]);
    }
    assert!(env.snapshot_ids().is_empty());
}

#[test]
fn series_timeout_fails_the_run_and_is_recorded() {
    let job = Job::new(&series(
        "slow",
        &["sh", "-c", "echo x; sleep 30"],
        "timeout = \"1s\"",
    ));
    let started = Instant::now();
    let (out, report) = job.run(&["slow"]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    let entry = &report["series"][0];
    assert_eq!(entry["ok"], json!(false), "{report}");
    assert_eq!(entry["snapshot"], Value::Null, "{report}");
    assert!(
        entry["error"]
            .as_str()
            .is_some_and(|e| e.contains("timeout (1s)")),
        "{report}"
    );
    assert!(job.env.snapshot_ids().is_empty());

    let (_, st) = job.status(&[]);
    let s = series_status(&st, "slow");
    assert_eq!(s["last_run"]["ok"], json!(false), "{st}");
    assert!(
        s["last_run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("timeout")),
        "{st}"
    );
}

// ---------------------------------------------------------------------------------------
// Retention with quarantined snapshots
// ---------------------------------------------------------------------------------------

/// `forget --json ARGS…`, which must succeed; the report.
fn forget(env: &Env, args: &[&str]) -> Value {
    let out = larder(env)
        .args(["--json", "forget"])
        .args(args)
        .output()
        .expect("run larder forget");
    assert_success(&out, "forget");
    parse_json(&out.stdout)
}

#[test]
fn retention_never_counts_quarantined_snapshots_and_drops_superseded_ones() {
    let env = Env::init();
    let old = env.snapshot_id("db", &pg_dump(10, 20_000), &["--time", "2026-01-01 02:00"]);
    let bad = quarantined(
        &env,
        "db",
        &text_bytes(11, 20_000),
        &["--time", "2026-01-02 02:00"],
    );
    let new = env.snapshot_id("db", &pg_dump(12, 20_000), &["--time", "2026-01-03 02:00"]);
    let keep_other = env.snapshot_id("other", b"x", &["--time", "2026-01-01 00:00"]);

    // Two good ones fill --keep-last 2: the quarantined one takes no slot.
    let dry = forget(&env, &["--keep-last", "2", "--name", "db", "--dry-run"]);
    let kept: Vec<&Value> = dry["groups"][0]["snapshots"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|d| d["keep"] == json!(true))
                .map(|d| &d["id"])
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(kept, [&json!(new), &json!(old)], "{dry}");
    assert_eq!(
        dry["quarantined"],
        json!([{"id": bad, "time": dry["quarantined"][0]["time"], "superseded": true, "removed": true}]),
        "{dry}"
    );
    assert_eq!(env.snapshot_ids().len(), 4, "a dry run removed something");

    let report = forget(&env, &["--keep-last", "1", "--name", "db"]);
    assert_eq!(report["removed"], json!(2), "{report}");
    assert_eq!(report["quarantined"][0]["removed"], json!(true), "{report}");
    assert_eq!(ids_of(&env, "db"), [new]);
    assert_eq!(
        ids_of(&env, "other"),
        [keep_other],
        "--name db touched another series"
    );
}

#[test]
fn newest_quarantined_snapshot_is_kept_until_a_good_one_follows() {
    let env = Env::init();
    let good_data = pg_dump(13, 20_000);
    let good = env.snapshot_id("db", &good_data, &["--time", "2026-01-01 02:00"]);
    let bad = quarantined(
        &env,
        "db",
        &text_bytes(14, 20_000),
        &["--time", "2026-01-02 02:00"],
    );

    let report = forget(&env, &["--keep-last", "1", "--name", "db"]);
    assert_eq!(report["removed"], json!(0), "{report}");
    assert_eq!(report["quarantined"][0]["id"], json!(bad));
    assert_eq!(
        report["quarantined"][0]["superseded"],
        json!(false),
        "{report}"
    );
    assert_eq!(ids_of(&env, "db"), [good.clone(), bad.clone()]);
    assert_same_bytes(&env.restore(&["--name", "db"]), &good_data, "latest good");

    // Text output says why it stays.
    let out = larder(&env)
        .args(["forget", "--keep-last", "1", "--dry-run"])
        .output()
        .expect("run larder forget");
    assert_success(&out, "forget --dry-run");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&bad[..8]) && said.contains("keep (newest of its group)"),
        "{said}"
    );
}

// ---------------------------------------------------------------------------------------
// `larder run`: retention, events, several series
// ---------------------------------------------------------------------------------------

#[test]
fn run_applies_the_series_keep_policy() {
    let job = Job::new("");
    // The producer fails after writing while this file exists.
    let fail = job.env.path("FAIL");
    let script = format!("date +%s%N; test ! -e '{}'", text(&fail));
    job.write(&series("s", &["sh", "-c", &script], "keep = { last = 2 }"));
    let good = |want_forgotten: u64| {
        let entry = job.run_ok("s");
        assert_eq!(entry["forgotten"], json!(want_forgotten), "{entry}");
        run_snapshot(&entry)
    };

    let first = good(0);
    let second = good(0);
    let third = good(1);
    assert_eq!(ids_of(&job.env, "s"), [second.clone(), third.clone()]);

    // A quarantined run applies no policy and takes no slot...
    std::fs::write(&fail, b"").expect("create FAIL");
    let (out, report) = job.run(&["s"]);
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    assert_eq!(report["series"][0]["forgotten"], json!(0), "{report}");
    let bad = run_snapshot(&report["series"][0]);
    assert_eq!(
        ids_of(&job.env, "s"),
        [second.clone(), third.clone(), bad.clone()]
    );
    // ...and goes once a good run follows it, with the oldest good one.
    std::fs::remove_file(&fail).expect("remove FAIL");
    let fourth = good(2);
    assert_eq!(ids_of(&job.env, "s"), [third, fourth]);
    assert!(!ids_of(&job.env, "s").contains(&first));
}

#[test]
fn run_checks_the_series_dump_kind() {
    let job = Job::new("");
    let input = job.env.path("dump.sql");
    job.write(&series(
        "db",
        &["cat", text(&input)],
        "verify = \"pg_dump\"",
    ));
    let dump = pg_dump(15, 50_000);
    std::fs::write(&input, &dump).expect("write dump");
    let good = run_snapshot(&job.run_ok("db"));

    std::fs::write(&input, &dump[..dump.len() - 30]).expect("write cut dump");
    let (out, report) = job.run(&["db"]);
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    let entry = &report["series"][0];
    assert_eq!(entry["ok"], json!(false), "{report}");
    assert!(
        entry["quarantined"]
            .as_str()
            .is_some_and(|q| q.starts_with("pg_dump") && q.contains("trailer")),
        "{report}"
    );
    assert_same_bytes(&job.env.restore(&["--name", "db"]), &dump, "latest good");
    let (_, st) = job.status(&[]);
    let s = series_status(&st, "db");
    assert_eq!(s["last_good"]["id"], json!(good), "{st}");
    assert_eq!(s["last_bad"]["id"], entry["snapshot"], "{st}");
}

#[test]
fn run_records_good_and_failed_runs_for_status() {
    let job = Job::new(&format!(
        "{}{}",
        series("good", &["echo", "row"], ""),
        series("bad", &["sh", "-c", "echo x; exit 3"], "")
    ));
    let id = run_snapshot(&job.run_ok("good"));
    let (code, st) = job.status(&[]);
    assert_eq!(code, Some(0), "{st}");
    let good = series_status(&st, "good");
    assert_eq!(good["last_run"]["ok"], json!(true), "{st}");
    assert_eq!(good["last_run"]["snapshot"], json!(id), "{st}");
    assert_eq!(good["last_good"]["id"], json!(id), "{st}");

    // A producer that fails after writing: a quarantined snapshot, exit 13.
    let (out, report) = job.run(&["bad"]);
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    let entry = &report["series"][0];
    assert_eq!(entry["ok"], json!(false), "{report}");
    assert_eq!(entry["exit_code"], json!(13), "{report}");
    let bad_id = run_snapshot(entry);
    assert!(
        entry["quarantined"]
            .as_str()
            .is_some_and(|q| q.contains("exited with status 3")),
        "{report}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("QUARANTINED"), "{err}");

    let (_, st) = job.status(&[]);
    let bad = series_status(&st, "bad");
    assert_eq!(bad["last_run"]["ok"], json!(false), "{st}");
    assert_eq!(bad["last_bad"]["id"], json!(bad_id), "{st}");
    assert!(
        bad["last_bad"]["quarantine"]
            .as_str()
            .is_some_and(|q| q.contains("producer")),
        "{st}"
    );
    assert_eq!(bad["last_good"], Value::Null, "{st}");
    assert_eq!(bad["quarantined_snapshots"], json!(1), "{st}");
    // The good series is untouched by the other's failure.
    assert_eq!(series_status(&st, "good")["last_run"]["ok"], json!(true));

    let out = job
        .larder()
        .arg("status")
        .output()
        .expect("run larder status");
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("bad "))
        .unwrap_or_default();
    assert!(
        row.contains("QUARANTINED") && row.contains("RUN-FAILED"),
        "{table}"
    );
}

#[test]
fn run_all_runs_every_series_and_fails_if_any_did() {
    let job = Job::new(&format!(
        "{}{}{}",
        series("a", &["echo", "a"], ""),
        series("b", &["sh", "-c", "exit 3"], ""),
        series("c", &["echo", "c"], "")
    ));
    let (out, report) = job.run(&["--all"]);
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    let names: Vec<&Value> = report["series"]
        .as_array()
        .map(|a| a.iter().map(|e| &e["series"]).collect())
        .unwrap_or_default();
    assert_eq!(names, [&json!("a"), &json!("b"), &json!("c")], "{report}");
    let ok: Vec<&Value> = report["series"]
        .as_array()
        .map(|a| a.iter().map(|e| &e["ok"]).collect())
        .unwrap_or_default();
    assert_eq!(ok, [&json!(true), &json!(false), &json!(true)], "{report}");
    assert!(
        report["series"][1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with status 3")),
        "{report}"
    );
    assert_eq!(ids_of(&job.env, "a"), [run_snapshot(&report["series"][0])]);
    assert_eq!(ids_of(&job.env, "c"), [run_snapshot(&report["series"][2])]);
    assert!(
        ids_of(&job.env, "b").is_empty(),
        "an empty failed stream is no snapshot"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("larder: b: ") && err.contains("exited with status 3"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// `status`: freshness
// ---------------------------------------------------------------------------------------

#[test]
fn status_max_age_flag_marks_old_series_stale() {
    let env = Env::init();
    env.snapshot("fresh-db", b"new\n", &[]);
    let out = larder(&env)
        .args(["status", "--max-age", "1h"])
        .output()
        .expect("run larder status");
    assert_success(&out, "status of a fresh series");

    env.snapshot("old-db", b"old\n", &["--time", "2020-01-01 00:00"]);
    let out = larder(&env)
        .args(["--json", "status", "--max-age", "1h"])
        .output()
        .expect("run larder status");
    assert_eq!(out.status.code(), Some(15), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("old-db") && !err.contains("fresh-db"), "{err}");
    let st = parse_json(&out.stdout);
    assert_eq!(st["stale"], json!(["old-db"]), "{st}");
    assert_eq!(series_status(&st, "old-db")["stale"], json!(true));
    assert_eq!(
        series_status(&st, "old-db")["max_age_seconds"],
        json!(3600.0)
    );
    assert_eq!(series_status(&st, "fresh-db")["stale"], json!(false));

    let out = larder(&env)
        .args(["status", "--max-age", "1h"])
        .output()
        .expect("run larder status");
    assert_eq!(out.status.code(), Some(15));
    let table = String::from_utf8_lossy(&out.stdout);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
            .to_owned()
    };
    assert!(row("old-db").contains("STALE"), "{table}");
    assert!(row("old-db").contains("2020-01-01"), "{table}");
    assert!(!row("fresh-db").contains("STALE"), "{table}");

    // Without a limit nothing is stale; only the named series is checked.
    assert_success(
        &larder(&env).arg("status").output().expect("status"),
        "status",
    );
    let out = larder(&env)
        .args(["status", "--max-age", "1h", "fresh-db"])
        .output()
        .expect("run larder status");
    assert_success(&out, "status fresh-db");
}

#[test]
fn config_max_age_marks_stale_and_never_run_series() {
    let job = Job::new("");
    let body = |old_limit: &str| {
        format!(
            "{}{}{}{}",
            series("fresh-db", &["echo", "x"], "max_age = \"1h\""),
            series(
                "old-db",
                &["echo", "x"],
                &format!("max_age = \"{old_limit}\"")
            ),
            series("never-db", &["echo", "x"], "max_age = \"25h\""),
            series("unwatched", &["echo", "x"], "")
        )
    };
    job.write(&body("1h"));
    job.env.snapshot("fresh-db", b"new\n", &[]);
    job.env
        .snapshot("old-db", b"old\n", &["--time", "2020-01-01 00:00"]);

    let (code, st) = job.status(&[]);
    assert_eq!(code, Some(15), "{st}");
    assert_eq!(st["stale"], json!(["never-db", "old-db"]), "{st}");
    let never = series_status(&st, "never-db");
    assert_eq!(never["last_good"], Value::Null);
    assert_eq!(never["max_age_seconds"], json!(90000.0), "{st}");
    assert_eq!(
        series_status(&st, "unwatched")["stale"],
        json!(false),
        "{st}"
    );

    let out = job
        .larder()
        .arg("status")
        .output()
        .expect("run larder status");
    assert_eq!(out.status.code(), Some(15));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("never-db") && err.contains("old-db"), "{err}");
    let table = String::from_utf8_lossy(&out.stdout);
    for name in ["never-db", "old-db"] {
        let row = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default();
        assert!(row.contains("STALE"), "{name}:\n{table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("never-db") && l.contains("never"))
    );

    // The limit is the configured one: a generous one for old-db, and never-db gone.
    let generous =
        body("36500d").replace(&series("never-db", &["echo", "x"], "max_age = \"25h\""), "");
    job.write(&generous);
    let (code, st) = job.status(&[]);
    assert_eq!(code, Some(0), "{st}");
    assert_eq!(st["stale"], json!([]), "{st}");
}

// ---------------------------------------------------------------------------------------
// Restore drills
// ---------------------------------------------------------------------------------------

/// `larder --json drill ARGS…`: the output and the parsed report.
fn drill(job: &Job, args: &[&str]) -> (Output, Value) {
    let out = job
        .larder()
        .args(["--json", "drill"])
        .args(args)
        .output()
        .expect("run larder drill");
    assert_no_panic(&out.stderr);
    let report = parse_json(&out.stdout);
    (out, report)
}

/// A job with series `db` whose command prints `data`, drilled with `drill` (TOML array).
fn drill_job(data: &[u8], drill: &[&str]) -> Job {
    let job = Job::new("");
    let input = job.env.path("dump.sql");
    std::fs::write(&input, data).expect("write input");
    job.write(&series(
        "db",
        &["cat", text(&input)],
        &format!("drill = {}", toml(&drill)),
    ));
    job
}

#[test]
fn drill_pipes_the_newest_good_snapshot_into_its_command() {
    let data = text_bytes(20, 300_000);
    let job = drill_job(&data, &["true"]);
    let out_file = job.env.path("drilled.sql");
    let into_file = format!("cat > '{}'", text(&out_file));
    job.write(&series(
        "db",
        &["cat", text(&job.env.path("dump.sql"))],
        &format!("drill = {}", toml(&["sh", "-c", &into_file])),
    ));
    let id = run_snapshot(&job.run_ok("db"));
    // A newer quarantined snapshot is not what a drill restores.
    quarantined(&job.env, "db", &text_bytes(21, 300_000), &[]);

    let (out, report) = drill(&job, &["db"]);
    assert_success(&out, "drill db");
    assert_eq!(report["snapshot"], json!(id), "{report}");
    assert_eq!(report["drill"]["ok"], json!(true), "{report}");
    assert_eq!(report["drill"]["verified"], json!(true), "{report}");
    assert_eq!(report["drill"]["bytes"], json!(data.len()), "{report}");
    let drilled = std::fs::read(&out_file).expect("read the drill command's output");
    assert_same_bytes(&drilled, &data, "what the drill command read");

    let (_, st) = job.status(&[]);
    let s = series_status(&st, "db");
    assert_eq!(s["last_drill"]["ok"], json!(true), "{st}");
    assert_eq!(s["last_drill"]["snapshot"], json!(id), "{st}");
}

#[test]
fn failing_drill_command_exits_16_and_is_recorded() {
    let job = drill_job(
        &text_bytes(22, 50_000),
        &["sh", "-c", "cat > /dev/null; exit 1"],
    );
    job.run_ok("db");
    let metrics = job.env.path("larder.prom");
    let repo = text(&job.env.repo).to_owned();
    let (out, report) = drill(&job, &["--metrics-file", text(&metrics), "db"]);
    assert_eq!(out.status.code(), Some(16), "{out:?}");
    assert_eq!(report["drill"]["ok"], json!(false), "{report}");
    let m = std::fs::read_to_string(&metrics).expect("read the metrics file");
    assert_eq!(
        sample(&m, "larder_last_drill_success", &repo, "db"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        report["drill"]["verified"],
        json!(true),
        "the data was fine: {report}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("drill failed") && err.contains("exited with status 1"),
        "{err}"
    );

    let (_, st) = job.status(&[]);
    let d = &series_status(&st, "db")["last_drill"];
    assert_eq!(d["ok"], json!(false), "{st}");
    assert!(
        d["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with status 1")),
        "{st}"
    );

    // A command after `--` replaces the configured one, and passing is recorded too.
    let (out, _) = drill(
        &job,
        &[
            "--metrics-file",
            text(&metrics),
            "db",
            "--",
            "sh",
            "-c",
            "cat > /dev/null",
        ],
    );
    assert_success(&out, "drill with a passing command");
    let m = std::fs::read_to_string(&metrics).expect("read the metrics file");
    assert_eq!(
        sample(&m, "larder_last_drill_success", &repo, "db"),
        Some(1.0),
        "{m}"
    );
    let (_, st) = job.status(&[]);
    assert_eq!(
        series_status(&st, "db")["last_drill"]["ok"],
        json!(true),
        "{st}"
    );
}

#[test]
fn drill_timeout_kills_the_drill_command() {
    let job = drill_job(
        &text_bytes(32, 300_000),
        &["sh", "-c", "cat > /dev/null; sleep 30"],
    );
    let mut text = job.text();
    text.push_str("drill_timeout = \"1s\"\n");
    std::fs::write(&job.config, text).expect("write larder.toml");
    job.run_ok("db");
    let started = Instant::now();
    let (out, report) = drill(&job, &["db"]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(16), "{out:?}");
    assert_eq!(report["drill"]["verified"], json!(true), "{report}");
    assert!(
        report["drill"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("timeout (1s)")),
        "{report}"
    );
}

#[test]
fn drill_command_that_reads_nothing_still_verifies_every_blob() {
    let data = text_bytes(23, 1_000_000);
    let job = drill_job(&data, &["true"]);
    job.run_ok("db");
    let (out, report) = drill(&job, &["db"]);
    assert_success(&out, "drill into `true`");
    assert_eq!(report["drill"]["verified"], json!(true), "{report}");
    assert_eq!(report["drill"]["bytes"], json!(data.len()), "{report}");

    // Damage the last data blob: only a drill that reads past what `true` took finds it.
    let pack = job.env.only_object("packs");
    let listing = job.env.cat(&["pack", &file_name(&pack)]);
    let last = listing["blobs"]
        .as_array()
        .and_then(|b| b.iter().rev().find(|b| b["kind"] == "data"))
        .unwrap_or_else(|| panic!("no data blob in {listing}"));
    let at =
        last["offset"].as_u64().expect("offset") + last["stored_len"].as_u64().expect("len") / 2;
    flip_byte(&pack, usize::try_from(at).expect("offset fits"));
    let (out, report) = drill(&job, &["db"]);
    assert_eq!(out.status.code(), Some(14), "{out:?}");
    assert_eq!(report["drill"]["integrity"], json!(true), "{report}");
    assert_eq!(report["drill"]["verified"], json!(false), "{report}");
}

#[test]
fn drill_of_a_corrupt_pack_exits_14_and_is_recorded() {
    let job = drill_job(&text_bytes(24, 100_000), &["sh", "-c", "cat > /dev/null"]);
    job.run_ok("db");
    flip_byte(&job.env.only_object("packs"), 100);
    let (out, report) = drill(&job, &["db"]);
    assert_eq!(out.status.code(), Some(14), "{out:?}");
    assert_eq!(report["drill"]["ok"], json!(false), "{report}");
    assert_eq!(report["drill"]["integrity"], json!(true), "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("drill failed"));
    let (_, st) = job.status(&[]);
    assert_eq!(
        series_status(&st, "db")["last_drill"]["ok"],
        json!(false),
        "{st}"
    );
}

#[test]
fn drill_random_picks_only_good_snapshots() {
    let job = drill_job(b"unused\n", &["sh", "-c", "cat > /dev/null"]);
    let env = &job.env;
    let good = [
        env.snapshot_id("db", &pg_dump(25, 5000), &[]),
        env.snapshot_id("db", &pg_dump(26, 5000), &[]),
    ];
    for seed in 27..30 {
        quarantined(env, "db", &text_bytes(seed, 5000), &[]);
    }
    let mut seen = std::collections::BTreeSet::new();
    // Picking among all five instead would show a quarantined one in 16 drills with
    // probability 1 - (2/5)^16; both good ones show with probability 1 - 2^-15.
    for _ in 0..16 {
        let (out, report) = drill(&job, &["db", "--random"]);
        assert_success(&out, "drill --random");
        let id = report["snapshot"].as_str().unwrap_or_default().to_owned();
        assert!(
            good.contains(&id),
            "--random drilled {id}, not a good snapshot"
        );
        seen.insert(id);
    }
    assert_eq!(seen.len(), 2, "--random always picked {seen:?}");
}

#[test]
fn drill_of_a_directory_snapshot_runs_in_the_restored_tree() {
    let job = Job::new("");
    let dir = job.env.path("files");
    let file = dir.join("sub/a.txt");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(&file, text_bytes(31, 20_000)).expect("write a.txt");
    let expected = job.env.path("expected.txt");
    // The drill finds the file under `$LARDER_DRILL_DIR` and its working directory, at its
    // absolute path, with the bytes it had.
    let check = |f: &Path| {
        format!(
            "test -f \"$LARDER_DRILL_DIR\"'{f}' && cmp \"$LARDER_DRILL_DIR\"'{f}' '{e}' \
             && test \"$(pwd -P)\" = \"$(cd \"$LARDER_DRILL_DIR\" && pwd -P)\" && test -f ./'{f}'",
            f = text(f),
            e = text(&expected),
        )
    };
    job.write(&format!(
        "[series.files]\npaths = [{}]\ndrill = {}\n",
        toml(&text(&dir)),
        toml(&["sh", "-c", &check(&file)])
    ));
    job.run_ok("files");
    // Only the restored copy is left to find.
    std::fs::rename(&file, &expected).expect("move the original away");

    let (out, report) = drill(&job, &["files"]);
    assert_success(&out, "drill of a directory snapshot");
    assert_eq!(report["drill"]["verified"], json!(true), "{report}");

    // The same check of a file that is not in the snapshot fails the drill.
    let missing = check(&dir.join("sub/missing.txt"));
    let (out, _) = drill(&job, &["files", "--", "sh", "-c", &missing]);
    assert_eq!(out.status.code(), Some(16), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------

/// The value of the sample `name{repository="…",series="…"}` in a textfile.
fn sample(metrics: &str, name: &str, repo: &str, series: &str) -> Option<f64> {
    let prefix = format!("{name}{{repository=\"{repo}\",series=\"{series}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: bad value {v:?}"))
        })
}

#[test]
fn run_writes_the_metrics_textfile() {
    let job = Job::new("");
    let dir = job.env.path("textfile");
    std::fs::create_dir(&dir).expect("mkdir");
    let (flag_file, config_file) = (dir.join("larder.prom"), dir.join("configured.prom"));
    job.write(&format!(
        "{}{}[metrics]\ntextfile = {}\n",
        series("good", &["echo", "row"], "max_age = \"1h\""),
        series("bad", &["sh", "-c", "echo x; exit 3"], ""),
        toml(&text(&config_file))
    ));
    let repo = text(&job.env.repo).to_owned();

    // `[metrics] textfile` without the flag.
    job.run_ok("good");
    let configured = std::fs::read_to_string(&config_file).expect("read the configured textfile");
    assert_eq!(
        sample(&configured, "larder_last_run_success", &repo, "good"),
        Some(1.0),
        "{configured}"
    );
    // Every configured series is listed, even before its first run.
    assert_eq!(
        sample(&configured, "larder_snapshots", &repo, "bad"),
        Some(0.0),
        "{configured}"
    );
    assert_eq!(
        sample(&configured, "larder_last_run_success", &repo, "bad"),
        None
    );
    assert!(!flag_file.exists());

    // --metrics-file wins; a failing run of another series is in the file with 0.
    let out = job
        .larder()
        .arg("--metrics-file")
        .arg(&flag_file)
        .args(["run", "bad"])
        .output()
        .expect("run larder run");
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    let m = std::fs::read_to_string(&flag_file).expect("read --metrics-file");
    assert!(m.contains("# TYPE larder_last_run_success gauge"), "{m}");
    assert!(m.contains("# HELP larder_last_run_success "), "{m}");
    assert_eq!(
        sample(&m, "larder_last_run_success", &repo, "good"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "larder_last_run_success", &repo, "bad"),
        Some(0.0),
        "{m}"
    );
    let age = sample(&m, "larder_snapshot_age_seconds", &repo, "good").expect("age of good");
    assert!((0.0..600.0).contains(&age), "{m}");
    assert_eq!(
        sample(&m, "larder_snapshot_age_seconds", &repo, "bad"),
        None,
        "no good one"
    );
    assert_eq!(
        sample(&m, "larder_quarantined_snapshots", &repo, "bad"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(sample(&m, "larder_stale", &repo, "good"), Some(0.0), "{m}");
    assert_eq!(
        sample(&m, "larder_max_age_seconds", &repo, "good"),
        Some(3600.0),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "larder_repository_snapshots{{repository=\"{repo}\"}} 2\n"
        )),
        "{m}"
    );
    assert!(m.ends_with('\n'));
    assert_eq!(
        std::fs::read_to_string(&config_file).expect("read the configured textfile"),
        configured,
        "--metrics-file should replace the configured textfile, not add to it"
    );

    // Written atomically: nothing but the two files remains.
    assert_eq!(dir_names(&dir), ["configured.prom", "larder.prom"]);
}

// ---------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------

/// A request the test server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: String,
}

/// An HTTP server on 127.0.0.1 that records each request and answers 200; its base URL.
fn serve() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test server");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut conn = BufReader::new(conn);
            if let Some(req) = read_request(&mut conn) {
                log.lock().expect("request log").push(req);
            }
            let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = conn.get_mut().write_all(reply.as_bytes());
        }
    });
    (base, seen)
}

/// Reads one request: the request line, the headers and a `Content-Length` body.
fn read_request(conn: &mut impl BufRead) -> Option<Seen> {
    let mut line = String::new();
    conn.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut len = 0;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `[notify]` sending everything to `base`, with more keys (`extra`, TOML lines).
fn notify_config(base: &str, extra: &str) -> String {
    format!(
        "[notify]\nwebhook = {}\nhealthchecks = {}\n{extra}\n",
        toml(&[format!("{base}/hook")]),
        toml(&format!("{base}/hc"))
    )
}

#[test]
fn run_pings_start_and_success_and_posts_the_webhook() {
    let (base, seen) = serve();
    let job = Job::new(&format!(
        "{}{}",
        series("s", &["echo", "row"], ""),
        notify_config(&base, "on = \"always\"")
    ));
    let entry = job.run_ok("s");
    let id = run_snapshot(&entry);
    let reqs = seen.lock().expect("request log").clone();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/hc/start")
    );
    let mut rest: Vec<&str> = reqs[1..].iter().map(|r| r.path.as_str()).collect();
    rest.sort_unstable();
    assert_eq!(rest, ["/hc", "/hook"], "{reqs:?}");

    let hook = reqs
        .iter()
        .find(|r| r.path == "/hook")
        .expect("webhook request");
    assert_eq!(hook.method, "POST");
    let payload: Value = serde_json::from_str(&hook.body).expect("webhook body is JSON");
    assert_eq!(payload["series"], "s", "{payload}");
    assert_eq!(payload["ok"], json!(true), "{payload}");
    assert_eq!(payload["snapshot"], json!(id), "{payload}");
    let ping = reqs.iter().find(|r| r.path == "/hc").expect("success ping");
    assert!(ping.body.contains(&id[..8]), "{ping:?}");
}

#[test]
fn failed_run_pings_fail_and_sends_the_webhooks_that_wait_for_failures() {
    let (base, seen) = serve();
    let own = format!("healthchecks = {}", toml(&format!("{base}/own")));
    let job = Job::new(&format!(
        "{}{}{}",
        series("g", &["echo", "row"], &own),
        series(
            "f",
            &[
                "sh",
                "-c",
                "echo x; echo 'pg_dump: error: connection refused' >&2; exit 3"
            ],
            ""
        ),
        notify_config(&base, "")
    ));
    let take = || std::mem::take(&mut *seen.lock().expect("request log"));

    // `on` defaults to failures: a good run only pings, at the series' own URL.
    job.run_ok("g");
    let reqs = take();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/own/start", "/own"], "{reqs:?}");

    let (out, _) = job.run(&["f"]);
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    let reqs = take();
    let mut paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths[0], "/hc/start", "{reqs:?}");
    paths.sort_unstable();
    assert_eq!(paths, ["/hc/fail", "/hc/start", "/hook"], "{reqs:?}");
    let fail = reqs
        .iter()
        .find(|r| r.path == "/hc/fail")
        .expect("fail ping");
    assert_eq!(fail.method, "POST");
    assert!(fail.body.contains("exited with status 3"), "{fail:?}");
    // The producer's stderr is the log tail, and it still reaches larder's stderr.
    assert!(
        fail.body.contains("pg_dump: error: connection refused"),
        "{fail:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pg_dump: error: connection refused"),
        "{out:?}"
    );
    let hook = reqs
        .iter()
        .find(|r| r.path == "/hook")
        .expect("webhook request");
    let payload: Value = serde_json::from_str(&hook.body).expect("webhook body is JSON");
    assert_eq!(payload["series"], "f", "{payload}");
    assert_eq!(payload["ok"], json!(false), "{payload}");
    assert!(
        payload["summary"]
            .as_str()
            .is_some_and(|s| s.contains("quarantined")),
        "{payload}"
    );
}

#[test]
fn unreachable_notification_endpoint_does_not_fail_a_good_run() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", closed.local_addr().expect("local address"));
    drop(closed); // nothing listens there now: connections are refused
    let job = Job::new(&format!(
        "{}{}",
        series("s", &["echo", "row"], ""),
        notify_config(&base, "on = \"always\"\nretries = 0\ntimeout = \"5s\"")
    ));
    let (out, report) = job.run(&["s"]);
    assert_success(&out, "run with a dead notification endpoint");
    assert_eq!(report["series"][0]["ok"], json!(true), "{report}");
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("larder: warning: "))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("healthchecks start ping")),
        "{err}"
    );
    assert!(warnings.iter().any(|w| w.contains("webhook")), "{err}");
    assert!(!err.contains("larder: error"), "{err}");
    assert_eq!(ids_of(&job.env, "s").len(), 1);
    let (_, st) = job.status(&[]);
    assert_eq!(
        series_status(&st, "s")["last_run"]["ok"],
        json!(true),
        "{st}"
    );
}

/// Events are history, not data: after runs, a drill and a prune the repository checks
/// clean; a corrupt event is reported by `check` (exit 14, naming it) but stops neither
/// `status` nor a backup.
#[test]
fn events_check_clean_and_a_corrupt_one_is_named_but_harmless() {
    let job = Job::new(&series(
        "s",
        &["sh", "-c", "seq 1 20000"],
        "drill = [\"sh\", \"-c\", \"cat >/dev/null\"]",
    ));
    job.run_ok("s");
    job.run_ok("s");
    let drilled = job
        .larder()
        .args(["drill", "s"])
        .output()
        .expect("run drill");
    assert_success(&drilled, "drill");
    let check = job.larder().args(["check"]).output().expect("run check");
    assert_success(&check, "check after runs, a drill and a prune");

    let events: Vec<std::path::PathBuf> = std::fs::read_dir(job.env.repo.join("events"))
        .expect("events/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    // Two runs, one drill, the first run's prune.
    assert_eq!(events.len(), 4, "{events:?}");
    let victim = &events[0];
    let mut bytes = std::fs::read(victim).expect("read event");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut perms = std::fs::metadata(victim).expect("stat").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(victim, perms).expect("chmod");
    std::fs::write(victim, &bytes).expect("write event");

    // A fresh catalog must read every event again.
    let fresh = job.env.path("fresh-cache");
    let check = job
        .larder()
        .arg("--cache-dir")
        .arg(&fresh)
        .args(["check"])
        .output()
        .expect("run check");
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(14), "{out}");
    assert!(out.contains(&name), "check does not name the event: {out}");

    let status = job
        .larder()
        .arg("--cache-dir")
        .arg(&fresh)
        .args(["status"])
        .output()
        .expect("run status");
    assert_success(&status, "status with a corrupt event");
    job.run_ok("s");
}
