//! The deployment examples in `deploy/` (issue 6): each is checked with the tool that reads it
//! where one exists, and every `larder` command line in them is given to the real binary.
//!
//! - `systemd/`: every unit passes `systemd-analyze verify` (ExecStart pointed at the binary
//!   under test), with no warning at all; the sandbox leaves writable what `larder.toml` writes.
//! - `kubernetes/cronjob.yaml`: parsed by PyYAML, then checked here: a batch/v1 CronJob with
//!   `concurrencyPolicy: Forbid`, the password from a Secret, the configuration from the
//!   ConfigMap in the same file (which must parse as a larder configuration and fix the host),
//!   a cache volume, resources, `larder … run`.
//! - `crontab`: five numeric time fields per job, `PATH` and `MAILTO` set, each job run by
//!   `sh` against the binary (silent when larder succeeds, its output when it fails).
//! - `larder.toml`: loads with [`Config::load`] and has the keys `deploy/README.md` promises.
//!
//! "Given to the real binary" means `larder ARGS… --help`: clap rejects an unknown command or
//! flag before it reads any file, so a renamed flag fails here instead of at 2 AM.
//!
//! systemd-analyze or PyYAML missing: the test says so on stderr and passes, except under
//! `CI`, where `.ci/install-deps.sh` installs them and a missing tool is a failure.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use larder::config::{Config, SeriesConfig};
use larder::dump_check::DumpKind;
use serde_json::Value;

/// Where the units expect the binary; the copies under test point at the one just built.
const INSTALLED_BIN: &str = "/usr/local/bin/larder";

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

fn read(rel: &str) -> String {
    let p = deploy(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Runs a tool; `Err` (for [`common::required`]) only when it is not installed.
fn tool(cmd: &mut Command) -> Result<Output, String> {
    cmd.stdin(Stdio::null()).output().map_err(|e| {
        let name = cmd.get_program().to_string_lossy().into_owned();
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("`{name}` is not on PATH")
        } else {
            panic!("cannot run `{name}`: {e}")
        }
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `larder ARGS… --help` must succeed: every subcommand and flag in ARGS exists.
fn assert_accepted(args: &[String], from: &str) {
    assert!(!args.is_empty(), "{from}: no larder arguments");
    let out = assert_cmd::Command::new(common::bin())
        .args(args)
        .arg("--help")
        .timeout(common::TIMEOUT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{from}: `larder {}` is not accepted by the binary ({}):\n{}",
        args.join(" "),
        out.status,
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// systemd

/// One `Key=Value` of a unit file, with its section.
struct Setting {
    section: String,
    key: String,
    value: String,
}

/// The settings of a unit file, in order. Our units use no line continuations or quoting.
fn unit_settings(name: &str, text: &str) -> Vec<Setting> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "{name}:{}: keep settings on one line",
            n + 1
        );
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}:{}: not Key=Value: {line}", n + 1));
        out.push(Setting {
            section: section.clone(),
            key: key.trim().to_owned(),
            value: value.trim().to_owned(),
        });
    }
    out
}

/// Every value of `section`/`key` (unit files may repeat a key).
fn values<'a>(settings: &'a [Setting], section: &str, key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|s| s.section == section && s.key == key)
        .map(|s| s.value.as_str())
        .collect()
}

/// The one value of `section`/`key`.
fn value<'a>(settings: &'a [Setting], unit: &str, section: &str, key: &str) -> &'a str {
    match values(settings, section, key)[..] {
        [v] => v,
        ref v => panic!("{unit}: want one [{section}] {key}=, found {v:?}"),
    }
}

/// The unit files under `deploy/systemd`, by name, sorted.
fn units() -> Vec<(String, String)> {
    let mut names = common::dir_names(&deploy("systemd"));
    names.retain(|n| n.ends_with(".service") || n.ends_with(".timer"));
    names
        .into_iter()
        .map(|n| {
            let t = read(&format!("systemd/{n}"));
            (n, t)
        })
        .collect()
}

/// `larder` arguments of a service's ExecStart, after checking that it runs the installed
/// binary (which the copies under test replace).
fn exec_args(unit: &str, settings: &[Setting]) -> Vec<String> {
    let exec = value(settings, unit, "Service", "ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(
        words.next(),
        Some(INSTALLED_BIN),
        "{unit}: ExecStart={exec}"
    );
    words.map(str::to_owned).collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let test = "systemd_units_pass_systemd_analyze_verify";
    let units = units();
    let names: Vec<&str> = units.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "larder-backup.service",
            "larder-backup.timer",
            "larder-drill.service",
            "larder-drill.timer",
            "larder-status.service",
            "larder-status.timer",
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let bin = common::bin()
        .to_str()
        .expect("the test binary's path is UTF-8");
    assert!(
        !bin.contains(char::is_whitespace),
        "ExecStart would split {bin:?}"
    );
    let mut paths = Vec::new();
    for (name, body) in &units {
        let settings = unit_settings(name, body);
        if name.ends_with(".service") {
            assert_accepted(&exec_args(name, &settings), name);
        }
        let p = dir.path().join(name);
        std::fs::write(&p, body.replace(INSTALLED_BIN, bin)).unwrap();
        paths.push(p);
    }

    let Some(out) = common::required(
        test,
        "systemd-analyze is not installed",
        "apt-get install systemd",
        tool(Command::new("systemd-analyze").arg("verify").args(&paths)),
    ) else {
        return;
    };
    // verify exits 0 on an unknown key or an unparsable value ("…, ignoring"): any output
    // at all is a finding.
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        out.status
    );
}

#[test]
fn systemd_units_do_what_the_readme_says() {
    let units = units();
    let unit = |name: &str| -> Vec<Setting> {
        let (_, body) = units
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no deploy/systemd/{name}"));
        unit_settings(name, body)
    };

    for (name, body) in &units {
        let s = unit_settings(name, body);
        if let Some(base) = name.strip_suffix(".timer") {
            assert!(
                units.iter().any(|(n, _)| *n == format!("{base}.service")),
                "{name} starts no service of this directory"
            );
            assert_eq!(
                value(&s, name, "Install", "WantedBy"),
                "timers.target",
                "{name}"
            );
            continue;
        }
        assert_eq!(value(&s, name, "Service", "Type"), "oneshot", "{name}");
        assert_eq!(value(&s, name, "Service", "User"), "larder", "{name}");
        assert_eq!(
            value(&s, name, "Service", "CacheDirectory"),
            "larder",
            "{name}"
        );
        assert_eq!(
            value(&s, name, "Service", "Environment"),
            "LARDER_CACHE_DIR=%C/larder",
            "{name}: the cache larder uses must be the one CacheDirectory= makes"
        );
        assert_eq!(
            value(&s, name, "Service", "ProtectSystem"),
            "strict",
            "{name}"
        );
        assert_eq!(
            value(&s, name, "Service", "NoNewPrivileges"),
            "yes",
            "{name}"
        );
        assert!(
            body.contains("OnFailure="),
            "{name}: show where OnFailure= goes"
        );
    }

    let backup = unit("larder-backup.service");
    let args = exec_args("larder-backup.service", &backup);
    assert!(args.ends_with(&["run".into(), "--all".into()]), "{args:?}");
    assert_eq!(value(&backup, "backup", "Service", "Nice"), "10");
    assert!(!values(&backup, "Service", "IOSchedulingClass").is_empty());
    let status = unit("larder-status.service");
    assert!(exec_args("larder-status.service", &status).contains(&"status".into()));
    let drill = unit("larder-drill.service");
    assert!(exec_args("larder-drill.service", &drill).contains(&"drill".into()));

    let timer = unit("larder-backup.timer");
    assert_eq!(value(&timer, "backup.timer", "Timer", "Persistent"), "true");
    assert!(!values(&timer, "Timer", "RandomizedDelaySec").is_empty());
    let hourly = unit("larder-status.timer");
    assert_eq!(
        value(&hourly, "status.timer", "Timer", "OnCalendar"),
        "hourly"
    );
    let weekly = unit("larder-drill.timer");
    assert!(value(&weekly, "drill.timer", "Timer", "OnCalendar").starts_with("Sun "));
}

/// `ProtectSystem=strict` makes everything read-only: each unit must leave writable what
/// its command writes with `deploy/larder.toml` (`run` and `drill` a local repository, all
/// three the metrics textfile's directory), and `ProtectHome=` must not hide the password.
#[test]
fn systemd_sandbox_allows_what_the_config_writes() {
    let c = Config::load(&deploy("larder.toml")).unwrap();
    let url = c.repository.url.as_deref().unwrap();
    let prom_dir = c.metrics.textfile.as_deref().unwrap().parent().unwrap();
    let pw = c.repository.password_file.as_deref().unwrap();
    assert!(
        !["/home", "/root", "/run/user"]
            .iter()
            .any(|h| pw.starts_with(h)),
        "{} is hidden by ProtectHome=",
        pw.display()
    );

    for (name, writes_repo) in [
        ("larder-backup.service", true),
        ("larder-drill.service", true),
        ("larder-status.service", false),
    ] {
        let s = unit_settings(name, &read(&format!("systemd/{name}")));
        let writable: Vec<PathBuf> = values(&s, "Service", "ReadWritePaths")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(|p| PathBuf::from(p.trim_start_matches('-')))
            .collect();
        let covered = |p: &Path| writable.iter().any(|w| p.starts_with(w));
        if writes_repo && url.starts_with('/') {
            assert!(
                covered(Path::new(url)),
                "{name}: {url} not in ReadWritePaths {writable:?}"
            );
        }
        assert!(
            covered(prom_dir),
            "{name}: {} not in ReadWritePaths {writable:?}",
            prom_dir.display()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Kubernetes

/// The YAML documents of `deploy/kubernetes/cronjob.yaml`, as JSON; `None` after a loud note
/// when python3 or PyYAML is missing and `CI` is not set.
fn cronjob_documents(test: &str) -> Option<Vec<Value>> {
    const TO_JSON: &str = "import json, sys\n\
        try:\n    import yaml\n\
        except ImportError as e:\n    print(e, file=sys.stderr); sys.exit(3)\n\
        json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)\n";
    let yaml = read("kubernetes/cronjob.yaml");
    let run = || -> Result<Output, String> {
        let mut child = Command::new("python3")
            .args(["-c", TO_JSON])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("`python3` cannot be started: {e}"))?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = common::wait_output(child, "python3");
        if out.status.code() == Some(3) {
            return Err(format!(
                "python3 has no PyYAML: {}",
                text(&out.stderr).trim()
            ));
        }
        Ok(out)
    };
    let out = common::required(
        test,
        "python3 with PyYAML is not installed",
        "apt-get install python3-yaml",
        run(),
    )?;
    assert!(
        out.status.success(),
        "deploy/kubernetes/cronjob.yaml is not valid YAML:\n{}",
        text(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(docs) => Some(docs),
        other => panic!("not a list of documents: {other}"),
    }
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer)
        .unwrap_or_else(|| panic!("cronjob.yaml: no {pointer} in {v:#}"))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer)
        .as_str()
        .unwrap_or_else(|| panic!("cronjob.yaml: {pointer} is not a string"))
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The value of environment variable `name` in a container, if it sets one.
fn env_var<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    list(container, "/env").iter().find(|e| e["name"] == name)
}

#[test]
fn kubernetes_cronjob_is_forbid_with_a_secret_and_runs_larder() {
    let Some(docs) =
        cronjob_documents("kubernetes_cronjob_is_forbid_with_a_secret_and_runs_larder")
    else {
        return;
    };
    let kind = |k: &'static str| docs.iter().filter(move |d| d["kind"] == k);
    let cronjobs: Vec<&Value> = kind("CronJob").collect();
    let [cj] = cronjobs[..] else {
        panic!("want one CronJob, found {}", cronjobs.len())
    };
    assert_eq!(str_at(cj, "/apiVersion"), "batch/v1");
    assert_eq!(str_at(cj, "/spec/concurrencyPolicy"), "Forbid");
    assert!(
        at(cj, "/spec/startingDeadlineSeconds")
            .as_u64()
            .is_some_and(|s| s > 0)
    );
    assert_eq!(
        str_at(cj, "/spec/schedule").split_whitespace().count(),
        5,
        "schedule"
    );
    let job = at(cj, "/spec/jobTemplate/spec");
    assert!(
        at(job, "/backoffLimit").as_u64().is_some_and(|b| b <= 3),
        "backoffLimit"
    );
    let pod = at(job, "/template/spec");
    assert!(
        ["Never", "OnFailure"].contains(&str_at(pod, "/restartPolicy")),
        "restartPolicy"
    );
    let containers = list(pod, "/containers");
    let [c] = containers else {
        panic!("want one container, found {}", containers.len())
    };
    let cname = str_at(c, "/name");
    for rule in list(job, "/podFailurePolicy/rules") {
        if let Some(n) = rule.pointer("/onExitCodes/containerName") {
            assert_eq!(n, cname, "podFailurePolicy names another container");
        }
    }

    // `larder … run`, with arguments the binary accepts.
    let words = |p: &str| -> Vec<String> {
        list(c, p)
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    };
    let (command, args) = (words("/command"), words("/args"));
    assert_eq!(command, ["larder"], "the image's larder, arguments in args");
    assert!(args.contains(&"run".into()), "args {args:?} do not `run`");
    assert_accepted(&args, "cronjob.yaml");

    // A volume mounted at `path` (or above it), and its definition.
    let volumes = list(pod, "/volumes");
    let volume_at = |path: &str| -> &Value {
        let m = list(c, "/volumeMounts")
            .iter()
            .find(|m| Path::new(path).starts_with(str_at(m, "/mountPath")))
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"));
        volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("no volume {}", m["name"]))
    };

    // The password from a Secret: an environment variable, or a file on a secret volume.
    let from_secret = match (
        env_var(c, "LARDER_PASSWORD"),
        env_var(c, "LARDER_PASSWORD_FILE"),
    ) {
        (Some(e), _) => {
            let r = at(e, "/valueFrom/secretKeyRef");
            !str_at(r, "/name").is_empty() && !str_at(r, "/key").is_empty()
        }
        (None, Some(f)) => volume_at(str_at(f, "/value")).get("secret").is_some(),
        (None, None) => false,
    };
    assert!(
        from_secret,
        "the repository password does not come from a Secret"
    );

    // The configuration: the ConfigMap in this file, mounted where --config points.
    let at_flag = args
        .iter()
        .position(|a| a == "--config")
        .expect("--config in args");
    let config_path = args.get(at_flag + 1).expect("a path after --config");
    let file_name = Path::new(config_path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let cm_name = str_at(volume_at(config_path), "/configMap/name");
    let cm = kind("ConfigMap")
        .find(|d| d["metadata"]["name"] == cm_name)
        .unwrap_or_else(|| panic!("ConfigMap {cm_name} is not in cronjob.yaml"));
    let toml = str_at(cm, &format!("/data/{file_name}"));
    let config = Config::parse(toml)
        .unwrap_or_else(|(line, m)| panic!("the ConfigMap's {file_name}:{line:?}: {m}"));
    assert!(!config.series.is_empty(), "the ConfigMap defines no series");
    // Pod hostnames change every run; snapshots are grouped by name and host.
    let host_fixed = args.contains(&"--host".into())
        || config.repository.host.is_some()
        || config.series.values().all(|s| s.host.is_some());
    assert!(
        host_fixed,
        "the host is not fixed: every run would start new series"
    );

    // The cache on a volume that outlives the container's file system.
    let cache = env_var(c, "LARDER_CACHE_DIR").expect("LARDER_CACHE_DIR");
    let v = volume_at(str_at(cache, "/value"));
    if let Some(claim) = v.pointer("/persistentVolumeClaim/claimName") {
        assert!(
            kind("PersistentVolumeClaim").any(|d| d["metadata"]["name"] == *claim),
            "PersistentVolumeClaim {claim} is not in cronjob.yaml"
        );
    } else {
        assert!(
            v.get("emptyDir").is_some(),
            "the cache volume {v} is neither a PVC nor emptyDir"
        );
    }

    for part in ["requests", "limits"] {
        assert!(
            at(c, &format!("/resources/{part}/memory")).is_string(),
            "resources.{part}.memory"
        );
    }
}

// ---------------------------------------------------------------------------------------
// cron

/// A crontab time field: `*` or numbers in `range`, as `N`, `N-M`, with `/STEP`, comma lists.
fn cron_field_ok(field: &str, range: std::ops::RangeInclusive<u32>) -> bool {
    let num = |s: &str| s.parse::<u32>().is_ok_and(|n| range.contains(&n));
    field.split(',').all(|item| {
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        let base_ok = base == "*"
            || match base.split_once('-') {
                Some((a, b)) => num(a) && num(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
                None => num(base),
            };
        base_ok && step.is_none_or(|s| s.parse::<u32>().is_ok_and(|n| n > 0))
    })
}

/// One job line of a crontab.
struct CronJob {
    /// The five time fields.
    fields: Vec<String>,
    /// The rest of the line, which cron gives to `sh -c`.
    command: String,
}

/// `deploy/crontab`: its job lines and its variables (`NAME=value`), in order.
struct Crontab {
    jobs: Vec<CronJob>,
    vars: Vec<(String, String)>,
}

impl Crontab {
    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The job whose command has the word `word`; exactly one must.
    fn job(&self, word: &str) -> &CronJob {
        let found: Vec<&CronJob> = self
            .jobs
            .iter()
            .filter(|j| j.command.split_whitespace().any(|w| w == word))
            .collect();
        match found[..] {
            [j] => j,
            _ => panic!("crontab: want one job with `{word}`, found {}", found.len()),
        }
    }
}

fn crontab() -> Crontab {
    let (mut jobs, mut vars) = (Vec::new(), Vec::new());
    for (n, line) in read("crontab").lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap();
        if let Some((k, v)) = first.split_once('=') {
            assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            vars.push((k.to_owned(), format!("{v}{}", &line[first.len()..])));
            continue;
        }
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..5 {
            let f = rest.split_whitespace().next().unwrap_or_else(|| {
                panic!("crontab:{}: fewer than five time fields: {line}", n + 1)
            });
            fields.push(f.to_owned());
            rest = rest.trim_start()[f.len()..].trim_start();
        }
        // cron turns an unescaped % into a newline and feeds the rest to stdin.
        assert!(
            !rest.contains('%'),
            "crontab:{}: % in a command: {line}",
            n + 1
        );
        jobs.push(CronJob {
            fields,
            command: rest.to_owned(),
        });
    }
    Crontab { jobs, vars }
}

#[test]
fn crontab_lines_have_five_fields_and_run_larder() {
    let tab = crontab();
    assert!(
        tab.var("PATH")
            .is_some_and(|p| p.split(':').any(|d| d == "/usr/local/bin")),
        "crontab: PATH must reach /usr/local/bin/larder"
    );
    assert!(tab.var("MAILTO").is_some(), "crontab: say where mail goes");

    let ranges = [0..=59, 0..=23, 1..=31, 1..=12, 0..=7];
    for CronJob { fields, command } in &tab.jobs {
        for (f, r) in fields.iter().zip(ranges.clone()) {
            assert!(
                cron_field_ok(f, r.clone()),
                "crontab: {f:?} is not a field in {r:?}"
            );
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.ends_with("larder"))
            .unwrap_or_else(|| panic!("crontab: `{command}` does not call larder"));
        assert!(
            words[at..]
                .iter()
                .any(|w| ["run", "status", "drill"].contains(w)),
            "crontab: `{command}`"
        );
    }
    let nightly = &tab.job("run").fields;
    assert!(
        nightly[2..] == ["*", "*", "*"],
        "`run` is not daily: {nightly:?}"
    );
    let hourly = &tab.job("status").fields;
    assert!(
        hourly[1..] == ["*", "*", "*", "*"],
        "`status` is not hourly: {hourly:?}"
    );
}

/// Each job's command as cron runs it (`sh -c`), with `larder` a shell function: passing
/// its arguments to the real binary with `--help` must print nothing (the arguments exist;
/// success is silent, so no mail), failing must print larder's output. (A function, not a
/// wrapper script, so no executable is written while other tests fork: ETXTBSY.)
#[test]
fn crontab_commands_run_in_sh_and_speak_only_on_failure() {
    let tab = crontab();
    let sh = |larder: &str, command: &str| -> Output {
        assert_cmd::Command::new("sh")
            .args(["-c", &format!("larder() {{ {larder}; }}\n{command}")])
            .timeout(common::TIMEOUT)
            .output()
            .unwrap()
    };
    let accepts = format!("'{}' \"$@\" --help", common::bin().display());
    let fails = "echo 'larder: error: series shop-db is stale' >&2; return 15";
    for CronJob { command, .. } in &tab.jobs {
        let ok = sh(&accepts, command);
        let said = format!("{}{}", text(&ok.stdout), text(&ok.stderr));
        assert!(
            ok.status.success() && said.is_empty(),
            "crontab: `{command}` with larder accepting its arguments printed (so mailed):\n{said}"
        );
        let failed = sh(fails, command);
        assert!(
            text(&failed.stdout).contains("series shop-db is stale"),
            "crontab: `{command}` hides a failing larder's message: {:?}",
            text(&failed.stdout)
        );
    }
}

// ---------------------------------------------------------------------------------------
// The configuration

fn has_retention_and_freshness(name: &str, s: &SeriesConfig) {
    let keep = s
        .keep
        .as_ref()
        .unwrap_or_else(|| panic!("series {name}: no keep"));
    assert!(
        keep.daily.is_some() && keep.weekly.is_some() && keep.monthly.is_some(),
        "{name}"
    );
    assert!(s.max_age.is_some(), "series {name}: no max_age");
}

#[test]
fn example_config_loads_with_the_promised_series() {
    let c = Config::load(&deploy("larder.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.repository.url.is_some() && c.repository.password_file.is_some());
    let names: Vec<&str> = c.series.keys().map(String::as_str).collect();
    assert_eq!(names, ["etc", "shop-db"], "deploy/README.md names these");
    for (name, s) in &c.series {
        has_retention_and_freshness(name, s);
    }

    let db = c.series("shop-db").unwrap();
    let command = db.command.as_deref().unwrap();
    assert_eq!(command[0], "pg_dump");
    for flag in ["-Fc", "-Z0"] {
        assert!(
            command.contains(&flag.into()),
            "shop-db: pg_dump without {flag}"
        );
    }
    assert_eq!(db.verify.map(|v| v.0), Some(DumpKind::PgDumpCustom));
    assert!(
        db.timeout.is_some() && db.stall_timeout.is_some(),
        "shop-db: timeouts"
    );
    let drill: Vec<&str> = db.drill.iter().flatten().map(String::as_str).collect();
    assert_eq!(drill, ["pg_restore", "--list"]);

    let etc = c.series("etc").unwrap();
    assert_eq!(etc.paths.as_deref(), Some(&[PathBuf::from("/etc")][..]));

    assert!(c.metrics.textfile.is_some(), "metrics textfile");
    assert!(
        c.notify
            .healthchecks
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
        "notify healthchecks"
    );
}
