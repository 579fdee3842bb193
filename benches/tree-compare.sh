#!/usr/bin/env bash
# Directory-snapshot incrementals: larder against restic on a generated tree.
#
#   benches/tree-compare.sh [--only restic|larder] [--runs N] [--generate-only]
#                           [--report-only] [OUTDIR]
#
# OUTDIR defaults to ${LARDER_BENCH_DIR:-/var/tmp/larder-tree-bench}.
#
# The data set (built once, idempotently; about 2 GiB and 10 s on 2 cores):
#   OUTDIR/tree/     10,000 files, ~2 GiB, in 100 leaf directories of 100 files
#                    three levels deep (gNN/hN/kN/fNNN.dat): 9,838 files of
#                    1-64 KiB, 150 of 1-10 MiB, 12 of 50-100 MiB. Every file is
#                    pseudo-random bytes from Python's random.Random seeded
#                    with the seed and the file's path: deterministic, not
#                    compressible, nothing to deduplicate between files.
#   OUTDIR/change/   the modification for the third snapshot (plan.tsv and
#                    its payloads) and manifest.tsv (path, size, class).
#   OUTDIR/tree.conf the parameters; a later run with other parameters on the
#                    same OUTDIR is refused. Built in *.tmp, then renamed.
#
# For each tool, N times (default 3), in a fresh repository
# OUTDIR/compare/<tool>/repo (cache OUTDIR/compare/<tool>/cache):
#   0. (untimed) OUTDIR/compare/<tool>/tree := `cp -al OUTDIR/tree` (hard
#      links: instant, no space), then init the repository
#   1. first snapshot of that tree           wall time, CPU, peak RSS, bytes added
#   2. second snapshot, tree unchanged       same, and second/first time ratio
#   3. (untimed) apply OUTDIR/change/plan.tsv to the work tree: append 4 KiB
#      to 10 files (8 small, 1 medium, 1 large), add 5 files (4 small, 1
#      medium), delete 5 small files. An appended file is copied first (its
#      hard link is broken), so OUTDIR/tree itself never changes.
#   4. third snapshot of the modified tree   wall time, CPU, peak RSS, bytes added
# All three snapshots read the same path, with the same host ("bench") and
# name, so both tools use the previous snapshot as the parent. Reported values
# are medians (second/first: the median of the per-run ratios). MB = 10^6 B.
# The page cache is warm: the tree is read once before the runs, nothing is
# dropped; a `sync` precedes each timed snapshot.
#
# Each tool's medians go to OUTDIR/results/<tool>.tsv, so the two sides can
# be run at different times; the table and OUTDIR/results/compare.tsv are
# built from whichever files exist (--report-only: only that).
#
# Environment: LARDER_BIN (default <repo>/target/release/larder), RESTIC_BIN
# (default restic). Password "bench" (RESTIC_PASSWORD / LARDER_PASSWORD).
# larder is initialised with the Argon2id floor (--kdf-memory 19
# --kdf-iterations 2 --kdf-parallelism 1) when its `init --help` offers those
# flags, so that peak RSS shows the snapshot, not the KDF. Data set knobs:
# TREE_BENCH_SEED (4242), TREE_BENCH_DIRS (100), TREE_BENCH_FILES_PER_DIR
# (100), TREE_BENCH_LARGE (12 files of 50-100 MiB), TREE_BENCH_MEDIUM (150
# files of 1-10 MiB); the rest are 1-64 KiB.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

ONLY=
RUNS=3
GENERATE_ONLY=0
REPORT_ONLY=0
OUTDIR=

usage() { sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --only) ONLY=${2:?}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --generate-only) GENERATE_ONLY=1; shift ;;
        --report-only) REPORT_ONLY=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "unknown option: $1" >&2; usage 2 >&2 ;;
        *) OUTDIR=$1; shift ;;
    esac
done

OUTDIR=${OUTDIR:-${LARDER_BENCH_DIR:-/var/tmp/larder-tree-bench}}
LARDER_BIN=${LARDER_BIN:-$REPO_ROOT/target/release/larder}
RESTIC_BIN=${RESTIC_BIN:-restic}
SEED=${TREE_BENCH_SEED:-4242}
DIRS=${TREE_BENCH_DIRS:-100}
PER_DIR=${TREE_BENCH_FILES_PER_DIR:-100}
LARGE=${TREE_BENCH_LARGE:-12}
MEDIUM=${TREE_BENCH_MEDIUM:-150}
case $ONLY in ''|restic|larder) ;; *) echo "--only takes restic or larder" >&2; exit 2 ;; esac
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs takes a positive integer" >&2; exit 2; }
for v in "$SEED" "$DIRS" "$PER_DIR" "$LARGE" "$MEDIUM"; do
    [[ $v =~ ^[0-9]+$ ]] || { echo "TREE_BENCH_* knobs take non-negative integers" >&2; exit 2; }
done
((DIRS * PER_DIR >= LARGE + MEDIUM + 20)) || { echo "the tree needs at least 20 small files" >&2; exit 2; }

log() { printf '[tree-compare %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
TREE="$OUTDIR/tree"
CHANGE="$OUTDIR/change"
RESULTS="$OUTDIR/results"

# --- data set ----------------------------------------------------------------

# Writes the tree to $1 and the change set + manifest to $2; prints totals.
# Bump "generator=" in CONF whenever this changes what it writes.
generate() {
    python3 - "$1" "$2" "$SEED" "$DIRS" "$PER_DIR" "$LARGE" "$MEDIUM" <<'PY'
import os, random, sys

tree, change = sys.argv[1], sys.argv[2]
seed, dirs, per_dir, n_large, n_medium = map(int, sys.argv[3:])
KiB, MiB = 1 << 10, 1 << 20
BLOCK = 4 * MiB  # randbytes in big blocks: ~650 MB/s on one core


def write_random(path, size, key):
    # One generator per file, seeded by the path: a file's bytes do not depend
    # on any other file or on the order of generation.
    rng = random.Random(f"larder-tree:{seed}:{key}")
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, BLOCK)
            f.write(rng.randbytes(n))
            left -= n


def leaf(d):
    return f"g{d // 25:02d}/h{d // 5 % 5}/k{d % 5}"


layout = random.Random(f"larder-tree:{seed}:layout")
n = dirs * per_dir
classes = ["large"] * n_large + ["medium"] * n_medium + ["small"] * (n - n_large - n_medium)
span = {"large": (50 * MiB, 100 * MiB), "medium": (1 * MiB, 10 * MiB), "small": (1 * KiB, 64 * KiB)}
layout.shuffle(classes)
files = []  # (relative path, size, class)
for slot, cls in enumerate(classes):
    d, i = divmod(slot, per_dir)
    files.append((f"{leaf(d)}/f{i:03d}.dat", layout.randint(*span[cls]), cls))

for d in range(dirs):
    os.makedirs(os.path.join(tree, leaf(d)))
for path, size, _ in files:
    write_random(os.path.join(tree, path), size, path)

# The change for the third snapshot, drawn from its own generator.
pick = random.Random(f"larder-tree:{seed}:change")
by_class = {c: sorted(f for f in files if f[2] == c) for c in span}
appended = pick.sample(by_class["large"], min(1, n_large)) + pick.sample(by_class["medium"], min(1, n_medium))
rest = [f for f in by_class["small"]]
appended += pick.sample(rest, 10 - len(appended))
deleted = pick.sample([f for f in rest if f not in appended], 5)
os.makedirs(os.path.join(change, "payload"))
plan, append_bytes, add_bytes = [], 0, 0
for j, (path, _, _) in enumerate(sorted(appended)):
    write_random(os.path.join(change, "payload", f"append-{j}.bin"), 4 * KiB, f"append:{path}")
    plan.append(f"append\t{path}\tpayload/append-{j}.bin")
    append_bytes += 4 * KiB
for j in range(5):
    cls = "medium" if j == 4 and n_medium else "small"
    path = f"{leaf(pick.randrange(dirs))}/new-{j}.dat"
    size = pick.randint(*span[cls])
    write_random(os.path.join(change, "payload", f"add-{j}.bin"), size, f"add:{path}")
    plan.append(f"add\t{path}\tpayload/add-{j}.bin")
    add_bytes += size
for path, _, _ in sorted(deleted):
    plan.append(f"delete\t{path}\t-")
with open(os.path.join(change, "plan.tsv"), "w") as f:
    f.write("".join(line + "\n" for line in plan))
with open(os.path.join(change, "manifest.tsv"), "w") as f:
    f.write("".join(f"{p}\t{s}\t{c}\n" for p, s, c in files))
total = sum(s for _, s, _ in files)
summary = (f"files={n} bytes={total} large={n_large} medium={n_medium} small={n - n_large - n_medium} "
           f"change: appended={append_bytes} (10 files) added={add_bytes} (5 files) "
           f"deleted={sum(s for _, s, _ in deleted)} (5 files)")
with open(os.path.join(change, "summary"), "w") as f:
    f.write(summary + "\n")
print(summary)
PY
}

CONF="generator=1 seed=$SEED dirs=$DIRS files_per_dir=$PER_DIR large=$LARGE medium=$MEDIUM"

ensure_tree() {
    exec 8>"$OUTDIR/tree.lock"
    flock -n 8 || die "another tree-compare.sh holds $OUTDIR/tree.lock"
    if [[ -s "$OUTDIR/tree.conf" ]]; then
        [[ $(cat "$OUTDIR/tree.conf") == "$CONF" ]] ||
            die "$OUTDIR was built with '$(cat "$OUTDIR/tree.conf")', not '$CONF'; use another OUTDIR"
    else
        printf '%s\n' "$CONF" >"$OUTDIR/tree.conf.tmp"
        mv "$OUTDIR/tree.conf.tmp" "$OUTDIR/tree.conf"
    fi
    # change/ is renamed into place before tree/, so tree/ marks a finished set.
    if [[ -d $TREE ]]; then
        [[ -s $CHANGE/plan.tsv && -s $CHANGE/summary ]] || die "$TREE exists but $CHANGE is incomplete; remove both"
        log "data set present: $(cat "$CHANGE/summary")"
        return 0
    fi
    command -v python3 >/dev/null || die "python3 is needed to generate the tree"
    log "generating the tree in $TREE.tmp ($CONF)"
    rm -rf "$TREE.tmp" "$CHANGE.tmp" "$CHANGE"
    local start=$SECONDS summary
    summary=$(generate "$TREE.tmp" "$CHANGE.tmp")
    mv "$CHANGE.tmp" "$CHANGE"
    mv "$TREE.tmp" "$TREE"
    log "generated in $((SECONDS - start)) s: $summary"
}

# Applies change/plan.tsv to the work tree $1 (a hard-linked copy of TREE).
apply_change() {
    local w=$1 op path src
    while IFS=$'\t' read -r op path src; do
        case $op in
            append)
                # cp breaks the hard link: TREE keeps its bytes.
                cp "$w/$path" "$w/$path.tmp"
                cat "$CHANGE/$src" >>"$w/$path.tmp"
                mv "$w/$path.tmp" "$w/$path" ;;
            add) cp "$CHANGE/$src" "$w/$path" ;;
            delete) rm "$w/$path" ;;
            *) die "bad line in $CHANGE/plan.tsv: $op" ;;
        esac
    done <"$CHANGE/plan.tsv"
}

# --- helpers -------------------------------------------------------------------

# median of the numbers given as arguments (mean of the middle two if even;
# whole numbers from 10^5 up, so byte counts keep every digit)
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        if (m == int(m) || m >= 1e5 || m <= -1e5) printf "%.0f\n", m; else printf "%.6g\n", m }'
}
# calc EXPR: evaluate with awk, 3 decimals
calc() { awk "BEGIN { printf \"%.3f\n\", $* }"; }
repo_bytes() { du -sb "$1" | cut -f1; }

# timed LOG CMD...: run CMD under /usr/bin/time, stdout+stderr to LOG; sets
# T_WALL (s), T_RSS (KiB), T_CPU (user+sys s).
timed() {
    local out=$1; shift
    local tf="$WORK/time.out"
    if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" </dev/null >"$out" 2>&1; then
        log "command failed: $*"
        tail -n 20 "$out" >&2
        return 1
    fi
    local u s
    read -r T_WALL T_RSS u s < <(tail -n 1 "$tf")
    T_CPU=$(calc "$u + $s")
}

# --- tool adapters -------------------------------------------------------------
# <tool>_cmd init|snapshot sets the array CMD; $REPO, $CACHE and $WTREE are set
# per tool. The snapshot command is the same for all three snapshots.

restic_check() { command -v "$RESTIC_BIN" >/dev/null || die "restic not found (apt-get install restic)"; }
restic_version() { "$RESTIC_BIN" version; }
restic_cmd() {
    local pre=(env RESTIC_PASSWORD=bench "$RESTIC_BIN" -r "$REPO" --cache-dir "$CACHE")
    case $1 in
        init) CMD=("${pre[@]}" init -q) ;;
        snapshot) CMD=("${pre[@]}" backup --host bench "$WTREE") ;;
    esac
}
# restic's own account of a snapshot, from its text summary
restic_summary() { grep -m1 '^Files:' "$1" | tr -s ' ' || true; }

LARDER_INIT_ARGS=()
larder_version() {
    local v wt
    v=$("$LARDER_BIN" --version 2>/dev/null || echo "larder (no --version)")
    v="$v (binary sha256 $(sha256sum "$LARDER_BIN" | cut -c1-12), built $(date -r "$LARDER_BIN" '+%Y-%m-%d %H:%M')"
    if wt=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null); then
        [[ -z $(git -C "$REPO_ROOT" status --porcelain -- src Cargo.toml 2>/dev/null) ]] || wt="$wt+dirty"
        v="$v; work tree $wt"
    fi
    printf '%s; init %s)\n' "$v" "${LARDER_INIT_ARGS[*]:-defaults}"
}
larder_cmd() {
    local pre=(env LARDER_PASSWORD=bench LARDER_REPOSITORY="$REPO" LARDER_CACHE_DIR="$CACHE" "$LARDER_BIN")
    case $1 in
        init) CMD=("${pre[@]}" init "${LARDER_INIT_ARGS[@]}") ;;
        snapshot) CMD=("${pre[@]}" snapshot --name tree --host bench "$WTREE") ;;
    esac
}
larder_summary() { :; }
# The binary must exist and snapshot a directory: try it on a two-file tree in
# a scratch repository, so that a build without directory snapshots stops here
# with its own error message rather than half-way through a run.
larder_check() {
    [[ -x $LARDER_BIN ]] || die "larder binary $LARDER_BIN not found (cargo build --release, or set LARDER_BIN)"
    if "$LARDER_BIN" init --help 2>/dev/null | grep -q -- '--kdf-memory'; then
        LARDER_INIT_ARGS=(--kdf-memory 19 --kdf-iterations 2 --kdf-parallelism 1)
    fi
    local probe="$OUTDIR/compare/larder/probe"
    rm -rf "$probe"
    mkdir -p "$probe/tree/sub"
    echo one >"$probe/tree/a.txt"
    echo two >"$probe/tree/sub/b.txt"
    local REPO="$probe/repo" CACHE="$probe/cache" WTREE="$probe/tree"
    larder_cmd init
    "${CMD[@]}" >"$probe/init.log" 2>&1 || { cat "$probe/init.log" >&2; die "larder init failed: ${CMD[*]}"; }
    larder_cmd snapshot
    if ! "${CMD[@]}" >"$probe/snapshot.log" 2>&1 </dev/null; then
        sed 's/^/    /' "$probe/snapshot.log" >&2
        die "$LARDER_BIN cannot snapshot a directory (\`larder snapshot --name tree --host bench DIR\` failed, output above): no directory snapshots in this build yet? (--only restic measures restic alone)"
    fi
    rm -rf "$probe"
}

# --- one tool ------------------------------------------------------------------

run_tool() {
    local tool=$1
    [[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"
    local base="$OUTDIR/compare/$tool"
    mkdir -p "$base/log"
    exec 9>"$base/lock"
    flock -n 9 || die "another tree-compare.sh is running $tool in $OUTDIR"
    WORK="$base"
    REPO="$base/repo"
    CACHE="$base/cache"
    WTREE="$base/tree"

    local version tree_info tree_bytes
    version=$("${tool}_version" | head -n 1)
    tree_info="$(cat "$OUTDIR/tree.conf"); $(cat "$CHANGE/summary")"
    tree_bytes=$(sed -n 's/^files=[0-9]* bytes=\([0-9]*\) .*/\1/p' "$CHANGE/summary")
    [[ -n $tree_bytes ]] || die "no byte count in $CHANGE/summary"
    log "$tool: $version"
    log "$tool: $RUNS runs on $TREE ($(cat "$CHANGE/summary"))"
    log "$tool: reading the tree once so that the page cache is warm"
    find "$TREE" -type f -print0 | xargs -0 cat >/dev/null

    local load_start
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    local -a w1=() w2=() w3=() r1=() r2=() r3=() c1=() c2=() c3=() a1=() a2=() a3=() ratio=()
    local run before after
    for ((run = 1; run <= RUNS; run++)); do
        rm -rf "$REPO" "$CACHE" "$WTREE"
        cp -al "$TREE" "$WTREE"
        "${tool}_cmd" init
        "${CMD[@]}" >"$base/log/init.log" 2>&1 </dev/null || { cat "$base/log/init.log" >&2; die "$tool init failed: ${CMD[*]}"; }
        "${tool}_cmd" snapshot
        before=$(repo_bytes "$REPO")

        sync -f "$base"
        timed "$base/log/first.log" "${CMD[@]}" || die "$tool: first snapshot failed (log: $base/log/first.log)"
        w1+=("$T_WALL"); r1+=("$T_RSS"); c1+=("$T_CPU")
        after=$(repo_bytes "$REPO"); a1+=("$((after - before))"); before=$after

        sync -f "$base"
        timed "$base/log/second.log" "${CMD[@]}" || die "$tool: second snapshot failed (log: $base/log/second.log)"
        w2+=("$T_WALL"); r2+=("$T_RSS"); c2+=("$T_CPU")
        after=$(repo_bytes "$REPO"); a2+=("$((after - before))"); before=$after
        ratio+=("$(awk -v a="${w2[-1]}" -v b="${w1[-1]}" 'BEGIN { printf "%.4f\n", (b > 0 ? a / b : 0) }')")

        apply_change "$WTREE"
        sync -f "$base"
        timed "$base/log/third.log" "${CMD[@]}" || die "$tool: third snapshot failed (log: $base/log/third.log)"
        w3+=("$T_WALL"); r3+=("$T_RSS"); c3+=("$T_CPU")
        after=$(repo_bytes "$REPO"); a3+=("$((after - before))")

        log "$tool run $run: first ${w1[-1]}s ${r1[-1]}KiB +${a1[-1]}B; second ${w2[-1]}s" \
            "${r2[-1]}KiB +${a2[-1]}B; third ${w3[-1]}s ${r3[-1]}KiB +${a3[-1]}B"
        local s
        for s in second third; do
            [[ -z $("${tool}_summary" "$base/log/$s.log") ]] || log "  $tool's own summary of the $s: $("${tool}_summary" "$base/log/$s.log")"
        done
    done
    rm -rf "$WTREE"

    local m1 out="$RESULTS/$tool.tsv"
    m1=$(median "${w1[@]}")
    mkdir -p "$RESULTS"
    {
        printf '# tool\t%s\n' "$tool"
        printf '# version\t%s\n' "$version"
        printf '# date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf '# host\t%s cores, %s\n' "$(nproc)" "$(uname -sr)"
        printf '# tree\t%s\n' "$tree_info"
        printf '# runs\t%s; warm page cache\n' "$RUNS"
        printf '# loadavg\t%s at start, %s at end (other work on the machine skews times)\n' \
            "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf 'metric\tmedian\tunit\tsamples\n'
        row() { local name=$1 unit=$2 value=$3; shift 3; printf '%s\t%s\t%s\t%s\n' "$name" "$value" "$unit" "$(IFS=,; echo "$*")"; }
        mib() { calc "$(median "$@") / 1024"; }
        row first_time s "$m1" "${w1[@]}"
        row first_speed MB/s "$(calc "$tree_bytes / 1e6 / $m1")"
        row first_cpu s "$(median "${c1[@]}")" "${c1[@]}"
        row first_peak_rss MiB "$(mib "${r1[@]}")" "${r1[@]}"
        row added_by_first bytes "$(median "${a1[@]}")" "${a1[@]}"
        row second_time s "$(median "${w2[@]}")" "${w2[@]}"
        row second_over_first ratio "$(median "${ratio[@]}")" "${ratio[@]}"
        row second_cpu s "$(median "${c2[@]}")" "${c2[@]}"
        row second_peak_rss MiB "$(mib "${r2[@]}")" "${r2[@]}"
        row added_by_second bytes "$(median "${a2[@]}")" "${a2[@]}"
        row third_time s "$(median "${w3[@]}")" "${w3[@]}"
        row third_cpu s "$(median "${c3[@]}")" "${c3[@]}"
        row third_peak_rss MiB "$(mib "${r3[@]}")" "${r3[@]}"
        row added_by_third bytes "$(median "${a3[@]}")" "${a3[@]}"
    } >"$out.tmp"
    mv "$out.tmp" "$out"
    log "$tool: results in $out (the last run's repository is kept in $REPO)"
}

# --- report --------------------------------------------------------------------

# value TOOL METRIC -> median from results/TOOL.tsv, or empty
value() {
    [[ -s "$RESULTS/$1.tsv" ]] || return 0
    awk -F'\t' -v m="$2" '$1 == m { print $2 }' "$RESULTS/$1.tsv"
}
meta() {
    [[ -s "$RESULTS/$1.tsv" ]] || return 0
    awk -F'\t' -v k="# $2" '$1 == k { print $2 }' "$RESULTS/$1.tsv"
}

report() {
    local tools=() t
    for t in restic larder; do [[ -s "$RESULTS/$t.tsv" ]] && tools+=("$t"); done
    [[ ${#tools[@]} -gt 0 ]] || die "no results in $RESULTS"
    local metrics=(first_time first_speed first_cpu first_peak_rss added_by_first
        second_time second_over_first second_cpu second_peak_rss added_by_second
        third_time third_cpu third_peak_rss added_by_third)
    if [[ ${#tools[@]} -eq 2 && $(meta restic tree) != "$(meta larder tree)" ]]; then
        log "warning: restic and larder results were measured on different trees"
    fi

    echo
    for t in "${tools[@]}"; do
        printf '%-7s %s  [%s]\n' "$t:" "$(meta "$t" version)" "$(meta "$t" date)"
    done
    printf 'tree: %s\n' "$(meta "${tools[0]}" tree)"
    for t in "${tools[@]}"; do printf '%-7s runs %s; loadavg %s\n' "$t:" "$(meta "$t" runs)" "$(meta "$t" loadavg)"; done
    echo
    printf '%-20s %-6s %14s %14s %14s\n' metric unit restic larder larder/restic
    printf '%-20s %-6s %14s %14s %14s\n' -------------------- ------ -------------- -------------- --------------

    local tsv="$RESULTS/compare.tsv.tmp" unit r l ratio m
    printf 'metric\tunit\trestic\tlarder\tlarder_over_restic\n' >"$tsv"
    for m in "${metrics[@]}"; do
        unit=$(awk -F'\t' -v m="$m" '$1 == m { print $3; exit }' "$RESULTS/${tools[0]}.tsv")
        r=$(value restic "$m"); l=$(value larder "$m")
        ratio=
        if [[ -n $r && -n $l ]]; then
            ratio=$(awk -v a="$l" -v b="$r" 'BEGIN { if (b == 0) print (a == 0 ? "1" : "inf"); else printf "%.3f\n", a / b }')
        fi
        printf '%-20s %-6s %14s %14s %14s\n' "$m" "$unit" "${r:--}" "${l:--}" "${ratio:--}"
        printf '%s\t%s\t%s\t%s\t%s\n' "$m" "$unit" "$r" "$l" "$ratio" >>"$tsv"
    done
    mv "$tsv" "$RESULTS/compare.tsv"
    echo
    echo "speed: higher is better; times, ratios, RSS, CPU and bytes: lower is better."
    echo "wrote $RESULTS/compare.tsv"
}

WORK=
REPO=
CACHE=
WTREE=
CMD=()
if [[ $REPORT_ONLY -eq 0 ]]; then
    ensure_tree
    [[ $GENERATE_ONLY -eq 0 ]] || exit 0
    tools=()
    for tool in restic larder; do [[ -z $ONLY || $ONLY == "$tool" ]] && tools+=("$tool"); done
    # Check every tool before measuring any, so a larder without directory
    # snapshots fails in seconds, not after restic's runs.
    for tool in "${tools[@]}"; do
        "${tool}_check"
    done
    for tool in "${tools[@]}"; do run_tool "$tool"; done
fi
report
