//! `larder check` on clean and damaged repositories: exit 0 when nothing is wrong, exit 14
//! with every problem naming its object, its blob and the snapshots it affects otherwise;
//! `--read-data` and `--read-data-subset`; unreferenced packs are warnings, not damage.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

/// `larder check ARGS…`, its exit not checked.
fn check(env: &Env, args: &[&str]) -> Output {
    env.larder()
        .arg("check")
        .args(args)
        .output()
        .expect("run larder check")
}

/// `larder --json check ARGS…`: the exit code and the parsed report.
fn check_json(env: &Env, args: &[&str]) -> (i32, Value) {
    let out = env
        .larder()
        .args(["--json", "check"])
        .args(args)
        .output()
        .expect("run larder --json check");
    assert_no_panic(&out.stderr);
    let code = out.status.code().expect("check exited normally");
    if code != 0 {
        assert_failure(&out, code, &["check found"]);
    }
    (code, parse_json(&out.stdout))
}

/// Asserts a plain check passed; returns its stdout.
fn check_passes(env: &Env, args: &[&str]) -> String {
    let out = check(env, args);
    assert_success(&out, &format!("check {args:?}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a check failed with exit 14, one error line on stderr naming every string in
/// `err_needles`, and a report on stdout naming every string in `out_needles`; returns
/// stdout.
fn check_fails(env: &Env, args: &[&str], err_needles: &[&str], out_needles: &[&str]) -> String {
    let out = check(env, args);
    assert_failure(&out, 14, err_needles);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for n in out_needles {
        assert!(
            stdout.contains(n),
            "check {args:?}: the report does not name `{n}`:\n{stdout}"
        );
    }
    stdout
}

/// The problems of a JSON report.
fn problems(report: &Value) -> &Vec<Value> {
    report["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems array: {report}"))
}

/// The problems of `kind`.
fn of_kind<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    problems(report)
        .iter()
        .filter(|p| p["kind"] == kind)
        .collect()
}

/// The `snapshots` of a problem, as strings.
fn snapshots_of(problem: &Value) -> BTreeSet<String> {
    problem["snapshots"]
        .as_array()
        .unwrap_or_else(|| panic!("no snapshots in {problem}"))
        .iter()
        .map(|s| s.as_str().expect("snapshot id").to_owned())
        .collect()
}

/// A count field of a JSON report.
fn count(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {report}"))
}

/// The first 8 hex digits, as the text report shows snapshots.
fn short(id: &str) -> &str {
    &id[..8]
}

/// Pack files (paths) present now.
fn pack_files(env: &Env) -> BTreeSet<PathBuf> {
    env.objects("packs").into_iter().collect()
}

/// Objects under `folder` that are not in `before`; asserts there is exactly one.
fn one_new(env: &Env, folder: &str, before: &BTreeSet<PathBuf>) -> PathBuf {
    let new: Vec<PathBuf> = env
        .objects(folder)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "expected one new object in {folder}/: {new:?}"
    );
    new.into_iter().next().expect("one new object")
}

/// A directory to snapshot: a file large enough for a stored content list, small files
/// listed inline, a subdirectory, a symlink.
fn make_tree(env: &Env, seed: u64) -> PathBuf {
    let root = env.path(&format!("tree{seed}"));
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir tree");
    std::fs::write(root.join("big.bin"), random_bytes(seed, 300_000)).expect("write");
    std::fs::write(root.join("small.txt"), text_bytes(seed, 3_000)).expect("write");
    std::fs::write(root.join("sub/c.txt"), text_bytes(seed + 1, 9_000)).expect("write");
    std::fs::write(root.join("sub/deeper/d.txt"), b"d").expect("write");
    std::os::unix::fs::symlink("small.txt", root.join("link")).expect("symlink");
    root
}

/// `larder --json snapshot --name NAME PATH`; the new snapshot's id.
fn snapshot_tree(env: &Env, name: &str, path: &Path) -> String {
    let out = env
        .larder()
        .args(["--json", "snapshot", "--name", name])
        .arg(path)
        .output()
        .expect("run larder snapshot PATH");
    assert_success(&out, "snapshot PATH");
    id_of(&parse_json(&out.stdout))
}

/// The blob entry of a pack (from `cat pack`, before damage) covering byte `offset`.
fn blob_at(env: &Env, pack_id: &str, offset: u64) -> String {
    let pack = env.cat(&["pack", pack_id]);
    let blobs = pack["blobs"]
        .as_array()
        .unwrap_or_else(|| panic!("cat pack has no blobs: {pack}"));
    let b = blobs
        .iter()
        .find(|b| {
            let start = b["offset"].as_u64().expect("offset");
            let len = b["stored_len"].as_u64().expect("stored_len");
            (start..start + len).contains(&offset)
        })
        .unwrap_or_else(|| panic!("no blob covers offset {offset}: {blobs:?}"));
    id_of(b)
}

/// Two snapshots in separate packs: a stream `db` and a directory `files`. Returns the
/// env, the two ids and the pack file of each.
struct Two {
    env: Env,
    stream: String,
    tree: String,
    stream_pack: PathBuf,
    tree_pack: PathBuf,
}

fn two_snapshots() -> Two {
    let env = Env::init();
    let stream = env.snapshot_id("db", &random_bytes(1, 400_000), &[]);
    let packs = pack_files(&env);
    let stream_pack = env.only_object("packs");
    let tree = snapshot_tree(&env, "files", &make_tree(&env, 2));
    let tree_pack = one_new(&env, "packs", &packs);
    Two {
        env,
        stream,
        tree,
        stream_pack,
        tree_pack,
    }
}

#[test]
fn clean_repository_passes_with_and_without_reading_data() {
    let t = two_snapshots();
    // An incremental directory snapshot shares most of its blobs with the first.
    let root = make_tree(&t.env, 3);
    snapshot_tree(&t.env, "files", &root);
    std::fs::write(root.join("small.txt"), b"changed").expect("write");
    snapshot_tree(&t.env, "files", &root);

    let text = check_passes(&t.env, &[]);
    assert!(text.contains("no damage found"), "{text}");
    assert!(text.contains("4 snapshots"), "{text}");
    let text = check_passes(&t.env, &["--read-data"]);
    assert!(text.contains("no damage found"), "{text}");

    let (code, r) = check_json(&t.env, &["--read-data"]);
    assert_eq!(code, 0, "{r}");
    assert!(problems(&r).is_empty(), "{r}");
    assert_eq!(count(&r, "snapshots"), 4);
    let packs = u64::try_from(pack_files(&t.env).len()).expect("count");
    assert_eq!(count(&r, "packs"), packs);
    assert_eq!(count(&r, "packs_read"), packs);
    assert!(count(&r, "trees") >= 4, "{r}");
    assert!(count(&r, "content_lists") >= 2, "{r}");
    assert!(count(&r, "chunk_refs") > 100, "{r}");
    assert!(count(&r, "blobs_read") > 100, "{r}");
    let bytes: u64 = pack_files(&t.env)
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .sum();
    assert_eq!(count(&r, "bytes_read"), bytes);
    assert_eq!(count(&r, "pack_bytes"), bytes);
    // The plain check reads no pack whole.
    let (code, r) = check_json(&t.env, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(count(&r, "packs_read"), 0);
    assert_eq!(count(&r, "bytes_read"), 0);
}

#[test]
fn flipped_byte_in_a_pack_is_found_by_read_data_naming_pack_blob_and_snapshot() {
    let t = two_snapshots();
    let pack_id = file_name(&t.stream_pack);
    let blob = blob_at(&t.env, &pack_id, 100);
    flip_byte(&t.stream_pack, 100);

    // The header is intact: the structure check has nothing to say.
    check_passes(&t.env, &[]);
    let stdout = check_fails(
        &t.env,
        &["--read-data"],
        &[&pack_id],
        &[&pack_id, &blob, short(&t.stream)],
    );
    assert!(!stdout.contains(short(&t.tree)), "{stdout}");

    let (code, r) = check_json(&t.env, &["--read-data"]);
    assert_eq!(code, 14);
    let corrupt = of_kind(&r, "blob_corrupt");
    assert_eq!(corrupt.len(), 1, "{r}");
    assert_eq!(corrupt[0]["blob"], blob.as_str());
    assert_eq!(
        corrupt[0]["object"],
        format!("packs/{}/{pack_id}", &pack_id[..2])
    );
    assert_eq!(snapshots_of(corrupt[0]), BTreeSet::from([t.stream.clone()]));
    let hash = of_kind(&r, "pack_hash_mismatch");
    assert_eq!(hash.len(), 1, "{r}");
    assert_eq!(snapshots_of(hash[0]), BTreeSet::from([t.stream.clone()]));
}

#[test]
fn flipped_byte_in_a_content_list_is_found_by_the_structure_check() {
    let t = two_snapshots();
    let pack_id = file_name(&t.tree_pack);
    let pack = t.env.cat(&["pack", &pack_id]);
    let list = pack["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .find(|b| b["kind"] == "content_list")
        .unwrap_or_else(|| panic!("no content list in {pack}"))
        .clone();
    let list_id = id_of(&list);
    let offset = list["offset"].as_u64().expect("offset") + 30;
    flip_byte(&t.tree_pack, usize::try_from(offset).expect("fits"));

    check_fails(
        &t.env,
        &[],
        &[&pack_id, &list_id],
        &[&list_id, short(&t.tree), "content list"],
    );
    let (_, r) = check_json(&t.env, &[]);
    let corrupt = of_kind(&r, "blob_corrupt");
    assert_eq!(corrupt.len(), 1, "{r}");
    assert_eq!(corrupt[0]["blob"], list_id.as_str());
    assert_eq!(snapshots_of(corrupt[0]), BTreeSet::from([t.tree.clone()]));
}

#[test]
fn truncated_pack_fails_the_structure_check() {
    let t = two_snapshots();
    let pack_id = file_name(&t.stream_pack);
    let len = std::fs::metadata(&t.stream_pack).expect("stat").len();
    truncate(&t.stream_pack, len / 2);

    check_fails(
        &t.env,
        &[],
        &[&pack_id, "bytes long"],
        &[&pack_id, short(&t.stream)],
    );
    let (code, r) = check_json(&t.env, &[]);
    assert_eq!(code, 14);
    let length = of_kind(&r, "pack_length");
    assert_eq!(length.len(), 1, "{r}");
    assert_eq!(snapshots_of(length[0]), BTreeSet::from([t.stream.clone()]));
    // Reading it says how much is lost, in one problem rather than one per blob.
    let (code, r) = check_json(&t.env, &["--read-data"]);
    assert_eq!(code, 14);
    let length = of_kind(&r, "pack_length");
    assert_eq!(length.len(), 2, "{r}");
    assert!(
        length[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("lie beyond its end")),
        "{r}"
    );
    assert!(problems(&r).len() <= 4, "{r}");
}

#[test]
fn deleted_pack_names_the_pack_and_the_snapshots_that_need_it() {
    let t = two_snapshots();
    let pack_id = file_name(&t.tree_pack);
    std::fs::remove_file(&t.tree_pack).expect("delete pack");

    let stdout = check_fails(
        &t.env,
        &[],
        &[&pack_id, "missing"],
        &[&pack_id, short(&t.tree)],
    );
    assert!(!stdout.contains(short(&t.stream)), "{stdout}");
    let (code, r) = check_json(&t.env, &["--read-data"]);
    assert_eq!(code, 14);
    let missing = of_kind(&r, "pack_missing");
    assert_eq!(missing.len(), 1, "{r}");
    assert_eq!(snapshots_of(missing[0]), BTreeSet::from([t.tree.clone()]));
    assert_eq!(problems(&r).len(), 1, "{r}");
    // The other pack is still read.
    assert_eq!(count(&r, "packs_read"), 1);
}

#[test]
fn deleted_index_segment_reports_the_pack_the_index_lost() {
    let t = two_snapshots();
    let segments: BTreeSet<PathBuf> = t.env.objects("index").into_iter().collect();
    assert_eq!(segments.len(), 2);
    // The second segment is the directory snapshot's: the one naming its pack.
    let seg = segments
        .iter()
        .find(|s| {
            let seg = t.env.cat(&["index", &file_name(s)]);
            seg.to_string().contains(&file_name(&t.tree_pack))
        })
        .expect("a segment names the tree pack")
        .clone();
    std::fs::remove_file(&seg).expect("delete segment");

    let pack_id = file_name(&t.tree_pack);
    let stdout = check_fails(
        &t.env,
        &[],
        &[&pack_id, "no index segment names it"],
        &[&pack_id, short(&t.tree)],
    );
    assert!(!stdout.contains("prune removes it"), "{stdout}");
    assert!(!stdout.contains(short(&t.stream)), "{stdout}");
    let (_, r) = check_json(&t.env, &[]);
    let lost = of_kind(&r, "pack_not_indexed");
    assert_eq!(lost.len(), 1, "{r}");
    assert_eq!(snapshots_of(lost[0]), BTreeSet::from([t.tree.clone()]));
    assert!(r["warnings"].as_array().is_some_and(Vec::is_empty), "{r}");
    // Walked from the unreferenced pack, so every blob the snapshot needs was counted.
    let needed = lost[0]["message"].as_str().expect("message");
    assert!(!needed.contains("need 1 of"), "{needed}");

    // With the pack gone as well, the blobs are missing outright.
    std::fs::remove_file(&t.tree_pack).expect("delete pack");
    let (code, r) = check_json(&t.env, &[]);
    assert_eq!(code, 14);
    let missing = of_kind(&r, "blob_missing");
    assert!(!missing.is_empty(), "{r}");
    for p in &missing {
        assert_eq!(snapshots_of(p), BTreeSet::from([t.tree.clone()]), "{p}");
    }
}

#[test]
fn corrupt_index_segment_is_reported_with_the_snapshots_it_indexed() {
    let t = two_snapshots();
    let segments = t.env.objects("index");
    let seg = segments
        .iter()
        .find(|s| {
            let seg = t.env.cat(&["index", &file_name(s)]);
            seg.to_string().contains(&file_name(&t.stream_pack))
        })
        .expect("a segment names the stream pack")
        .clone();
    let len = std::fs::metadata(&seg).expect("stat").len();
    flip_byte(&seg, usize::try_from(len / 2).expect("fits"));

    // The catalog merged it before the damage: check still knows what it named.
    let seg_name = format!("index/{}", file_name(&seg));
    check_fails(&t.env, &[], &[&seg_name], &[&seg_name, short(&t.stream)]);
    let (_, r) = check_json(&t.env, &[]);
    let bad = of_kind(&r, "index_segment_unreadable");
    assert_eq!(bad.len(), 1, "{r}");
    assert_eq!(snapshots_of(bad[0]), BTreeSet::from([t.stream.clone()]));
    // Its pack is not mistaken for a leftover.
    assert!(r["warnings"].as_array().is_some_and(Vec::is_empty), "{r}");
}

#[test]
fn corrupt_snapshot_object_is_named() {
    let t = two_snapshots();
    let snap = t.env.repo.join("snapshots").join(&t.tree);
    let len = std::fs::metadata(&snap).expect("stat").len();
    flip_byte(&snap, usize::try_from(len - 5).expect("fits"));

    let name = format!("snapshots/{}", t.tree);
    check_fails(&t.env, &[], &[&name], &[&name]);
    let (_, r) = check_json(&t.env, &[]);
    let bad = of_kind(&r, "snapshot_unreadable");
    assert_eq!(bad.len(), 1, "{r}");
    assert_eq!(snapshots_of(bad[0]), BTreeSet::from([t.tree.clone()]));
    assert_eq!(problems(&r).len(), 1, "{r}");

    // Without the catalog, opening the repository skips it with a warning (so that check
    // and repair can run), and check reports it the same way.
    t.env.drop_catalog();
    let (_, r) = check_json(&t.env, &[]);
    let bad = of_kind(&r, "snapshot_unreadable");
    assert_eq!(bad.len(), 1, "{r}");
    assert_eq!(problems(&r).len(), 1, "{r}");
}

#[test]
fn read_data_subsets_split_the_packs() {
    // Small packs: several of them.
    let env = Env::init_with(&["--pack-size", "1M"]);
    let id = env.snapshot_id("db", &random_bytes(5, 8 << 20), &[]);
    let all: BTreeSet<String> = pack_files(&env).iter().map(|p| file_name(p)).collect();
    assert!(all.len() >= 6, "{} packs", all.len());

    let read = |args: &[&str]| -> Vec<String> {
        let (code, r) = check_json(&env, args);
        assert_eq!(code, 0, "{r}");
        let packs: Vec<String> = r["read_packs"]
            .as_array()
            .unwrap_or_else(|| panic!("no read_packs: {r}"))
            .iter()
            .map(|p| p.as_str().expect("pack id").to_owned())
            .collect();
        assert_eq!(count(&r, "packs_read"), packs.len() as u64);
        packs
    };
    let first = read(&["--read-data-subset", "1/2"]);
    let second = read(&["--read-data-subset", "2/2"]);
    let mut both: Vec<String> = first.iter().chain(&second).cloned().collect();
    both.sort();
    let before = both.len();
    both.dedup();
    assert_eq!(
        before,
        both.len(),
        "a pack was read twice: {first:?} {second:?}"
    );
    assert_eq!(both.into_iter().collect::<BTreeSet<_>>(), all);
    // The same subset again reads the same packs.
    assert_eq!(read(&["--read-data-subset", "1/2"]), first);

    let n = all.len();
    assert_eq!(read(&["--read-data-subset", "50%"]).len(), n.div_ceil(2));
    assert_eq!(read(&["--read-data-subset", "100%"]).len(), n);
    let some = read(&["--read-data-subset", "3M"]);
    assert!(!some.is_empty() && some.len() <= 3, "{some:?}");

    // Damage in a pack outside the subset goes unnoticed; the complementary one finds it.
    let victim = pack_files(&env)
        .into_iter()
        .find(|p| first.contains(&file_name(p)))
        .expect("a pack of subset 1");
    flip_byte(&victim, 200);
    let (code, _) = check_json(&env, &["--read-data-subset", "2/2"]);
    assert_eq!(code, 0);
    let (code, r) = check_json(&env, &["--read-data-subset", "1/2"]);
    assert_eq!(code, 14);
    let corrupt = of_kind(&r, "blob_corrupt");
    assert_eq!(corrupt.len(), 1, "{r}");
    assert_eq!(snapshots_of(corrupt[0]), BTreeSet::from([id]));
}

#[test]
fn invalid_subsets_are_usage_errors() {
    let env = Env::init();
    env.snapshot("db", b"data", &[]);
    for bad in ["0/2", "3/2", "0%", "150%", "abc", "0"] {
        let out = check(&env, &["--read-data-subset", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        assert_no_panic(&out.stderr);
    }
    let out = check(&env, &["--read-data", "--read-data-subset", "1/2"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn unreferenced_pack_is_a_warning_not_damage() {
    // A snapshot whose run stopped after its pack was uploaded: pack present, index
    // segment and snapshot object not (removed here after the fact).
    let env = Env::init();
    let kept = env.snapshot_id("db", &text_bytes(6, 200_000), &[]);
    let packs = pack_files(&env);
    let segments: BTreeSet<PathBuf> = env.objects("index").into_iter().collect();
    let gone = env.snapshot_id("db", &random_bytes(7, 200_000), &[]);
    let leftover = one_new(&env, "packs", &packs);
    let segment = one_new(&env, "index", &segments);
    std::fs::remove_file(env.repo.join("snapshots").join(&gone)).expect("delete snapshot");
    std::fs::remove_file(&segment).expect("delete segment");

    let stdout = check_passes(&env, &[]);
    let leftover_id = file_name(&leftover);
    assert!(stdout.contains("warning"), "{stdout}");
    assert!(stdout.contains(&leftover_id), "{stdout}");
    assert!(stdout.contains("prune removes it"), "{stdout}");
    let (code, r) = check_json(&env, &["--read-data"]);
    assert_eq!(code, 0, "{r}");
    let warnings = r["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{r}");
    assert_eq!(warnings[0]["kind"], "unreferenced_pack");
    assert!(
        warnings[0]["object"]
            .as_str()
            .is_some_and(|o| o.ends_with(&leftover_id)),
        "{r}"
    );
    assert_eq!(env.snapshot_ids(), [kept]);
}

#[test]
fn empty_repository_passes() {
    let env = Env::init();
    let stdout = check_passes(&env, &["--read-data"]);
    assert!(stdout.contains("no damage found"), "{stdout}");
}

#[test]
fn snapshot_object_written_after_open_is_verified_too() {
    use larder::check::{CheckOptions, ProblemKind, ReadData};
    use larder::crypto::key_slot::Password;
    use larder::progress::NoProgress;

    let env = Env::init();
    let first = env.snapshot_id("db", &text_bytes(8, 50_000), &[]);
    let backend = std::sync::Arc::new(larder::backend::local::LocalBackend::open(&env.repo));
    let password = Password::new(PASSWORD.as_bytes().to_vec());
    // A catalog of its own, which the snapshot below does not update.
    let cache = env.path("library-cache");
    let repo = larder::repo::Repo::open(backend, &password, &cache).expect("open");

    // After the catalog sync: one good snapshot object (a concurrent backup) and one that
    // does not read. Only the second is a problem.
    let second = env.snapshot_id("db", &text_bytes(9, 50_000), &[]);
    let bad = "ab".repeat(32);
    std::fs::write(env.repo.join("snapshots").join(&bad), b"not a snapshot").expect("write");
    let opts = CheckOptions {
        read_data: ReadData::All,
    };
    let report = larder::check::run(&repo, &opts, &NoProgress).expect("check");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let p = &report.problems[0];
    assert_eq!(p.kind, ProblemKind::SnapshotUnreadable);
    assert_eq!(p.object.to_string(), format!("snapshots/{bad}"));
    assert_eq!(
        p.snapshots
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [bad]
    );
    // `first` walked, `bad` reported; `second` is not known to this catalog yet.
    assert_eq!(report.snapshots, 2, "{first} {second}");
}
