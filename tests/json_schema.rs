//! `format-spec/cli-json.schema.json` (issue 6, "Output"): the schema is a valid draft 2020-12
//! document that describes every field it names, every command that prints `--json` has a
//! `$defs` entry, and what the real binary prints on a small repository validates against
//! it. Each output is then damaged one field at a time (a field removed, a value of another
//! type put in its place) and must stop validating: a command that drops a field or changes
//! its type fails here, and so does a field the schema does not describe.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use larder::backend::local::LocalBackend;
use larder::crypto::key_slot::Password;
use larder::format::lock::{LockBody, LockKind};
use larder::repo::{Repo, object};
use serde_json::{Value, json};

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/format-spec/cli-json.schema.json"
);

/// The `$defs` entry of each `src/cli/<file>.rs` that prints `--json` (`cat` excepted: a
/// debugging view of stored objects, outside the schema).
const COMMANDS: &[(&str, &[&str])] = &[
    ("init", &["init"]),
    ("snapshot", &["snapshot"]),
    ("snapshots", &["snapshots"]),
    ("stats", &["stats"]),
    ("restore", &["restore", "restore_target"]),
    ("tree", &["ls", "diff", "dump"]),
    ("check", &["check"]),
    ("copy", &["copy"]),
    ("forget", &["forget"]),
    ("prune", &["prune"]),
    ("repair", &["repair_index", "repair_snapshots"]),
    ("key", &["key_list", "key_change"]),
    ("unlock", &["unlock"]),
    ("run", &["run"]),
    ("status", &["status"]),
    ("drill", &["drill"]),
];

/// Top-level objects printed on stderr, which carry no `requests`.
const WITHOUT_REQUESTS: &[&str] = &["restore", "dump"];

fn schema() -> Value {
    let text = std::fs::read_to_string(SCHEMA_PATH).expect("read the schema");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// The schema with `def` as its root: what one command's output must match.
fn validator(def: &str) -> jsonschema::Validator {
    let mut s = schema();
    assert!(
        s["$defs"].get(def).is_some(),
        "no $defs/{def} in the schema"
    );
    s["$ref"] = json!(format!("#/$defs/{def}"));
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&s)
        .unwrap_or_else(|e| panic!("$defs/{def} does not compile: {e}"))
}

/// Why `v` does not match `$defs/def`, one error a line; empty when it does.
fn errors(v: &jsonschema::Validator, value: &Value) -> String {
    v.iter_errors(value)
        .map(|e| format!("  at {}: {e}\n", e.instance_path()))
        .collect()
}

/// One step of a path into a JSON value.
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// Every value below the root, by path.
fn paths(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(Step::Key(k.clone()));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                at.push(Step::Index(i));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// A value of another JSON type than `v`.
fn retyped(v: &Value) -> Value {
    match v {
        Value::Null => json!(true),
        Value::Bool(_) => json!("not a boolean"),
        Value::Number(_) => json!("not a number"),
        Value::String(_) => json!(12345),
        Value::Array(_) => json!("not an array"),
        Value::Object(_) => json!("not an object"),
    }
}

/// Whether the field `key` of `parent` may be absent: the optional fields of a snapshot
/// object (format-spec/snapshot.md), a restore's `changes` (dry runs only) and, for the
/// outputs printed on stderr, `requests` at the top.
fn optional(def: &str, parent: &Value, key: &str, top: bool) -> bool {
    const SNAPSHOT_OPTIONAL: [&str; 7] = [
        "errors",
        "parent",
        "tree_counts",
        "damaged",
        "original",
        "quarantined",
        "warnings",
    ];
    (parent.get("larder_version").is_some() && SNAPSHOT_OPTIONAL.contains(&key))
        || (parent.get("written").is_some() && key == "changes")
        || (top && key == "requests" && WITHOUT_REQUESTS.contains(&def))
}

/// Validates one command's output against `$defs/def`, then damages it one field at a time
/// and checks that each damaged copy fails. Returns what went wrong, empty when nothing.
fn check_output(def: &str, what: &str, value: &Value) -> String {
    let v = validator(def);
    let errs = errors(&v, value);
    if !errs.is_empty() {
        return format!("{what}: does not match $defs/{def}:\n{errs}  output: {value}\n");
    }
    let mut problems = String::new();
    let mut all = Vec::new();
    paths(value, &mut Vec::new(), &mut all);
    for path in &all {
        let p = pointer(path);
        let mut damaged = value.clone();
        let slot = damaged.pointer_mut(&p).expect("a path just collected");
        *slot = retyped(slot);
        if v.is_valid(&damaged) {
            problems += &format!(
                "{what}: {p} still matches $defs/{def} with another type; is it described?\n"
            );
        }
        let Some((Step::Key(key), parent_path)) = path.split_last() else {
            continue;
        };
        let parent_ptr = pointer(parent_path);
        let parent = value.pointer(&parent_ptr).expect("the parent of a path");
        if optional(def, parent, key, parent_path.is_empty()) {
            continue;
        }
        let mut removed = value.clone();
        if let Some(Value::Object(m)) = removed.pointer_mut(&parent_ptr) {
            m.remove(key);
        }
        if v.is_valid(&removed) {
            problems += &format!(
                "{what}: {p} may be left out and $defs/{def} still matches; list it in `required`\n"
            );
        }
    }
    problems
}

/// What a run of the binary printed.
struct Run {
    what: String,
    out: Output,
}

impl Run {
    fn new(env: &Env, args: &[&str], stdin: Option<Vec<u8>>) -> Self {
        let mut c = env.larder();
        c.args(args);
        if let Some(data) = stdin {
            c.write_stdin(data);
        }
        let out = c.output().expect("run larder");
        assert_no_panic(&out.stderr);
        Run {
            what: format!("larder {}", args.join(" ")),
            out,
        }
    }

    /// Asserts the exit code.
    fn code(self, want: i32) -> Self {
        assert_eq!(
            self.out.status.code(),
            Some(want),
            "{}: exit {}, expected {want}; stderr:\n{}",
            self.what,
            self.out.status,
            String::from_utf8_lossy(&self.out.stderr)
        );
        self
    }

    fn ok(self) -> Self {
        self.code(0)
    }

    /// Stdout as one JSON document.
    fn stdout(&self) -> Value {
        parse_json(&self.out.stdout)
    }

    /// The last line of stderr that is a JSON object.
    fn stderr(&self) -> Value {
        let err = String::from_utf8_lossy(&self.out.stderr);
        let line = err
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("{}: no JSON line on stderr:\n{err}", self.what));
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: stderr line is not JSON ({e}): {line}", self.what))
    }
}

/// Collects the outputs checked and every problem found, and fails once at the end with
/// all of them.
#[derive(Default)]
struct Outputs {
    seen: BTreeSet<&'static str>,
    problems: String,
}

impl Outputs {
    fn check(&mut self, def: &'static str, what: &str, value: &Value) {
        self.seen.insert(def);
        self.problems += &check_output(def, what, value);
    }

    fn finish(self, want: &[&str]) {
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(self.seen, want, "outputs checked against the schema");
        assert!(self.problems.is_empty(), "\n{}", self.problems);
    }
}

#[test]
fn the_schema_is_valid_and_describes_every_field() {
    let s = schema();
    if let Err(e) = jsonschema::draft202012::meta::validate(&s) {
        panic!("not a valid draft 2020-12 schema: {e}");
    }
    let top = s["description"].as_str().unwrap_or_default();
    for words in ["never removed or renamed", "may be added", "larder cat"] {
        assert!(top.contains(words), "the top description lacks `{words}`");
    }
    let defs = s["$defs"].as_object().expect("$defs");
    let mut missing = Vec::new();
    describe_properties(&s, "#", &mut missing);
    for (name, d) in defs {
        if d.get("description")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            missing.push(format!("#/$defs/{name}"));
        }
    }
    assert!(missing.is_empty(), "without a description: {missing:?}");
    for (_, names) in COMMANDS {
        for &name in *names {
            let d = &defs
                .get(name)
                .unwrap_or_else(|| panic!("no $defs/{name} for a command"));
            if d["type"] != "object" {
                continue;
            }
            assert_eq!(
                d["additionalProperties"],
                json!(true),
                "$defs/{name}: new fields may be added"
            );
            let required = d["required"].as_array().expect("required");
            let on_stdout = !WITHOUT_REQUESTS.contains(&name);
            assert_eq!(
                required.contains(&json!("requests")),
                on_stdout,
                "$defs/{name}: `requests` is required exactly when printed on stdout"
            );
            assert!(
                !on_stdout || d["properties"].get("requests").is_some(),
                "$defs/{name} does not describe `requests`"
            );
        }
    }
}

/// Collects the paths of every property schema without a `description`.
fn describe_properties(s: &Value, at: &str, missing: &mut Vec<String>) {
    match s {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                for (k, p) in props {
                    if p.get("description")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        missing.push(format!("{at}/properties/{k}"));
                    }
                }
            }
            for (k, v) in m {
                describe_properties(v, &format!("{at}/{k}"), missing);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                describe_properties(v, &format!("{at}/{i}"), missing);
            }
        }
        _ => {}
    }
}

#[test]
fn every_command_that_prints_json_has_a_schema() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut printing = BTreeSet::new();
    for e in std::fs::read_dir(&dir).expect("list src/cli") {
        let p = e.expect("dir entry").path();
        let text = std::fs::read_to_string(&p).expect("read a cli file");
        let stem = file_name(&p).trim_end_matches(".rs").to_owned();
        if (text.contains("output::json(") || text.contains("ctx.json()"))
            && !["cat", "output"].contains(&stem.as_str())
        {
            printing.insert(stem);
        }
    }
    let known: BTreeSet<String> = COMMANDS.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(
        printing, known,
        "src/cli files printing --json vs the commands of format-spec/cli-json.schema.json"
    );
}

/// Writes a lock object as another process would have (as tests/locks.rs does).
fn plant_lock(env: &Env, kind: LockKind, pid: u32, age: Duration) {
    let b = Arc::new(LocalBackend::open(&env.repo));
    let pw = Password::new(PASSWORD.as_bytes().to_vec());
    let repo = Repo::open(b, &pw, &env.path("lib-cache")).expect("open repository");
    let t = jiff::Timestamp::now() - jiff::SignedDuration::try_from(age).expect("short age");
    let body = LockBody {
        kind,
        host: "other-host".into(),
        pid,
        command: "planted".into(),
        created: t,
        refreshed: t,
        nonce: "0123456789abcdef".into(),
    };
    object::store_lock(repo.backend().as_ref(), repo.keys(), &body).expect("store a lock");
}

/// A small directory: files (one of several chunks), a subdirectory, a symlink, a hardlink.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::write(root.join("a.txt"), b"alpha\n").expect("write");
    std::fs::write(root.join("sub/big.bin"), random_bytes(7, 300_000)).expect("write");
    std::fs::write(root.join("sub/gone.txt"), b"removed later\n").expect("write");
    std::os::unix::fs::symlink("a.txt", root.join("link")).expect("symlink");
    std::fs::hard_link(root.join("a.txt"), root.join("hard")).expect("hardlink");
}

#[test]
fn repository_commands_print_what_the_schema_says() {
    let env = Env::new();
    let mut o = Outputs::default();
    let s = |x: &Path| x.to_str().expect("UTF-8 temp path").to_owned();

    let mut init = vec!["--json", "init"];
    init.extend(FAST_KDF);
    o.check("init", "init", &Run::new(&env, &init, None).ok().stdout());

    // Two stream snapshots, a quarantined one, and two of a directory.
    let snap = |data: Vec<u8>, extra: &[&str], code: i32| {
        let mut args = vec!["--json", "snapshot", "--name", "db", "--stdin"];
        args.extend(extra);
        Run::new(&env, &args, Some(data)).code(code).stdout()
    };
    let db1 = snap(text_bytes(1, 200_000), &[], 0);
    o.check("snapshot", "snapshot --stdin", &db1);
    let db2 = snap(text_bytes(2, 200_000), &["--tag", "t"], 0);
    o.check("snapshot", "second snapshot --stdin", &db2);
    let quarantined = snap(random_bytes(3, 10_000), &["--verify", "pg_dump"], 13);
    o.check("snapshot", "quarantined snapshot", &quarantined);
    let db1 = id_of(&db1);

    let tree = env.path("tree");
    make_tree(&tree);
    let dir1 = Run::new(
        &env,
        &["--json", "snapshot", "--name", "files", &s(&tree)],
        None,
    )
    .ok()
    .stdout();
    o.check("snapshot", "snapshot of a directory", &dir1);
    std::fs::remove_file(tree.join("sub/gone.txt")).expect("rm");
    std::fs::write(tree.join("a.txt"), b"alpha, changed\n").expect("write");
    std::fs::write(tree.join("new.txt"), b"new\n").expect("write");
    let dir2 = Run::new(
        &env,
        &["--json", "snapshot", "--name", "files", &s(&tree)],
        None,
    )
    .ok()
    .stdout();
    o.check("snapshot", "second snapshot of a directory", &dir2);
    let (dir1, dir2) = (id_of(&dir1), id_of(&dir2));

    o.check(
        "snapshots",
        "snapshots",
        &Run::new(&env, &["--json", "snapshots"], None).ok().stdout(),
    );
    o.check(
        "stats",
        "stats",
        &Run::new(&env, &["--json", "stats"], None).ok().stdout(),
    );
    o.check(
        "stats",
        "stats --unused",
        &Run::new(&env, &["--json", "stats", "--unused", "--name", "db"], None)
            .ok()
            .stdout(),
    );

    // Restore: a stream to stdout (summary on stderr) and to a file; a directory, for real
    // and as a dry run.
    let r = Run::new(&env, &["--json", "restore", &db1], None).ok();
    o.check("restore", "restore to stdout (stderr summary)", &r.stderr());
    let file = s(&env.path("restored.bin"));
    let r = Run::new(&env, &["--json", "restore", &db1, "-o", &file], None).ok();
    o.check("restore", "restore -o", &r.stdout());
    let target = s(&env.path("target"));
    let r = Run::new(
        &env,
        &["--json", "restore", &dir2, "--target", &target],
        None,
    )
    .ok();
    o.check("restore_target", "restore --target", &r.stdout());
    let dry = s(&env.path("dry"));
    let r = Run::new(
        &env,
        &["--json", "restore", &dir1, "--target", &dry, "--dry-run"],
        None,
    )
    .ok();
    o.check("restore_target", "restore --target --dry-run", &r.stdout());

    // Looking into directory snapshots.
    let r = Run::new(&env, &["--json", "ls", "-R", &dir1], None).ok();
    o.check("ls", "ls -R", &r.stdout());
    let r = Run::new(&env, &["--json", "diff", &dir1, &dir2], None).ok();
    o.check("diff", "diff", &r.stdout());
    let big = s(&tree.join("sub/big.bin"));
    let r = Run::new(&env, &["--json", "dump", &dir2, &big], None).ok();
    o.check("dump", "dump (stderr summary)", &r.stderr());

    o.check(
        "check",
        "check --read-data",
        &Run::new(&env, &["--json", "check", "--read-data"], None)
            .ok()
            .stdout(),
    );

    // Key slots.
    o.check(
        "key_list",
        "key list",
        &Run::new(&env, &["--json", "key", "list"], None)
            .ok()
            .stdout(),
    );
    let mut c = env.larder();
    c.args(["--json", "key", "add"])
        .env("LARDER_NEW_PASSWORD", "another password");
    let out = c.output().expect("run larder key add");
    assert_success(&out, "key add");
    o.check("key_change", "key add", &parse_json(&out.stdout));

    // Locks: one stale, one live, then all.
    plant_lock(&env, LockKind::Shared, 1, Duration::from_secs(3600));
    plant_lock(&env, LockKind::Exclusive, 2, Duration::from_secs(5));
    o.check(
        "unlock",
        "unlock",
        &Run::new(&env, &["--json", "unlock"], None).ok().stdout(),
    );
    o.check(
        "unlock",
        "unlock --remove-all",
        &Run::new(&env, &["--json", "unlock", "--remove-all"], None)
            .ok()
            .stdout(),
    );

    // Copy into a second repository, then again as a dry run (everything present).
    let other = Env::new();
    let mut init = vec!["init"];
    init.extend(FAST_KDF);
    Run::new(&other, &init, None).ok();
    let (from, to) = (s(&env.repo), s(&other.repo));
    let copy = [
        "--json", "copy", "--from", &from, "--to", &to, "--name", "db",
    ];
    o.check("copy", "copy", &Run::new(&env, &copy, None).ok().stdout());
    let mut again = copy.to_vec();
    again.push("--dry-run");
    o.check(
        "copy",
        "copy --dry-run",
        &Run::new(&env, &again, None).ok().stdout(),
    );

    // Retention and prune.
    let forget = ["--json", "forget", "--keep-last", "1"];
    let mut dry = forget.to_vec();
    dry.push("--dry-run");
    o.check(
        "forget",
        "forget --dry-run",
        &Run::new(&env, &dry, None).ok().stdout(),
    );
    o.check(
        "forget",
        "forget",
        &Run::new(&env, &forget, None).ok().stdout(),
    );
    o.check(
        "prune",
        "prune --dry-run",
        &Run::new(&env, &["--json", "prune", "--dry-run"], None)
            .ok()
            .stdout(),
    );
    o.check(
        "prune",
        "prune",
        &Run::new(&env, &["--json", "prune"], None).ok().stdout(),
    );

    // Damage: a flipped byte in a pack, found by check (exit 14), marked by repair.
    let packs = env.objects("packs");
    let pack = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a pack");
    let len = std::fs::metadata(pack).expect("stat pack").len();
    flip_byte(pack, usize::try_from(len / 2).expect("a small pack"));
    o.check(
        "check",
        "check --read-data of a damaged repository",
        &Run::new(&env, &["--json", "check", "--read-data"], None)
            .code(14)
            .stdout(),
    );
    o.check(
        "repair_snapshots",
        "repair snapshots --read-data",
        &Run::new(
            &env,
            &["--json", "repair", "snapshots", "--read-data"],
            None,
        )
        .ok()
        .stdout(),
    );
    o.check(
        "snapshots",
        "snapshots with a damaged one",
        &Run::new(&env, &["--json", "snapshots"], None).ok().stdout(),
    );
    o.check(
        "repair_index",
        "repair index",
        &Run::new(&env, &["--json", "repair", "index"], None)
            .ok()
            .stdout(),
    );

    o.finish(&[
        "init",
        "snapshot",
        "snapshots",
        "stats",
        "restore",
        "restore_target",
        "ls",
        "diff",
        "dump",
        "check",
        "key_list",
        "key_change",
        "unlock",
        "copy",
        "forget",
        "prune",
        "repair_snapshots",
        "repair_index",
    ]);
}

#[test]
fn scheduled_commands_print_what_the_schema_says() {
    let env = Env::init();
    let config = env.path("larder.toml");
    let repo = env.repo.to_str().expect("UTF-8 temp path");
    std::fs::write(
        &config,
        format!(
            r#"[repository]
url = "{repo}"

[series.s]
command = ["sh", "-c", "seq 1 100000"]
keep = {{ last = 2 }}
max_age = "1d"
drill = ["sh", "-c", "cat >/dev/null"]
"#
        ),
    )
    .expect("write the configuration");
    let cfg = config.to_str().expect("UTF-8 temp path");
    let mut o = Outputs::default();
    // A series never run is stale (exit 15), with every optional part null.
    let r = Run::new(&env, &["--config", cfg, "--json", "status"], None).code(15);
    o.check("status", "status before any run", &r.stdout());
    // Three runs: the third one's `keep` removes a snapshot.
    for n in 1..=3 {
        let r = Run::new(&env, &["--config", cfg, "--json", "run", "s"], None).ok();
        o.check("run", &format!("run #{n}"), &r.stdout());
    }
    let r = Run::new(&env, &["--config", cfg, "--json", "drill", "s"], None).ok();
    o.check("drill", "drill", &r.stdout());
    let r = Run::new(&env, &["--config", cfg, "--json", "status"], None).ok();
    o.check("status", "status", &r.stdout());
    o.finish(&["status", "run", "drill"]);
}
