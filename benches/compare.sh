#!/usr/bin/env bash
# Compare larder against restic on the pg_dump pair made by dump-pair.sh.
#
#   benches/compare.sh [--only restic|larder] [--runs N] [--tiny-runs N]
#                      [--format sql|dump] [--no-verify] [--report-only] [OUTDIR]
#
# OUTDIR defaults to ${LARDER_BENCH_DIR:-/var/tmp/larder-bench} and must hold
# A.sql/B.sql (or A.dump/B.dump with --format dump). For each tool, N times
# (default 3), in a fresh repository under OUTDIR/compare/<tool>/:
#   1. backup A from stdin        wall time -> MB/s, peak RSS
#   2. backup B from stdin        wall time, bytes added to the repo by B
#                                 (du -sb of the repo after B minus after A)
#   3. restore B to /dev/null     wall time -> MB/s, peak RSS
# then, in the last run's repository (which holds A and B), the fixed cost of
# a tiny snapshot (`echo hi | ...`), --tiny-runs times (default 5). Reported
# values are medians. MB = 10^6 bytes. The page cache is warm: the inputs are
# read from the page cache after the first run, and nothing is dropped.
#
# Each tool's medians go to OUTDIR/results/<format>/<tool>.tsv, so the two sides can be
# run at different times; the table, larder/restic ratios and the combined
# OUTDIR/results/<format>/compare.{tsv,json} are built from whichever files exist.
#
# Environment: LARDER_BIN (default <repo>/target/release/larder), RESTIC_BIN
# (default restic). Both tools get the password "bench" and a cache directory
# inside OUTDIR/compare/<tool>/cache.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

ONLY=
RUNS=3
TINY_RUNS=5
FORMAT=sql
VERIFY=1
REPORT_ONLY=0
OUTDIR=

usage() { sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --only) ONLY=${2:?}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --tiny-runs) TINY_RUNS=${2:?}; shift 2 ;;
        --format) FORMAT=${2:?}; shift 2 ;;
        --no-verify) VERIFY=0; shift ;;
        --report-only) REPORT_ONLY=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "unknown option: $1" >&2; usage 2 >&2 ;;
        *) OUTDIR=$1; shift ;;
    esac
done

OUTDIR=${OUTDIR:-${LARDER_BENCH_DIR:-/var/tmp/larder-bench}}
LARDER_BIN=${LARDER_BIN:-$REPO_ROOT/target/release/larder}
RESTIC_BIN=${RESTIC_BIN:-restic}
case $ONLY in ''|restic|larder) ;; *) echo "--only takes restic or larder" >&2; exit 2 ;; esac
case $FORMAT in sql|dump) ;; *) echo "--format takes sql or dump" >&2; exit 2 ;; esac
[[ $RUNS =~ ^[1-9][0-9]*$ && $TINY_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs/--tiny-runs take a positive integer" >&2; exit 2; }

log() { printf '[compare %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -d $OUTDIR ]] || die "$OUTDIR does not exist; run benches/dump-pair.sh first"
OUTDIR=$(cd "$OUTDIR" && pwd)
INPUT_A="$OUTDIR/A.$FORMAT"
INPUT_B="$OUTDIR/B.$FORMAT"
RESULTS="$OUTDIR/results/$FORMAT"
mkdir -p "$RESULTS"

# --- helpers ---------------------------------------------------------------

# median of the numbers given as arguments (mean of the middle two if even)
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        if (m == int(m)) printf "%.0f\n", m; else printf "%.6g\n", m }'
}
# calc EXPR: evaluate with awk, 3 decimals
calc() { awk "BEGIN { printf \"%.3f\n\", $* }"; }
repo_bytes() { du -sb "$1" | cut -f1; }

# timed IN OUT CMD...: run CMD with stdin IN and stdout OUT under
# /usr/bin/time; sets T_WALL (s), T_RSS (KiB), T_CPU (user+sys s).
timed() {
    local in=$1 out=$2; shift 2
    local tf="$WORK/time.out" ef="$WORK/stderr.out"
    if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" <"$in" >"$out" 2>"$ef"; then
        log "command failed: $*"
        cat "$ef" >&2
        return 1
    fi
    local u s
    read -r T_WALL T_RSS u s < <(tail -n 1 "$tf")
    T_CPU=$(calc "$u + $s")
}

# --- tool adapters ---------------------------------------------------------
# <tool>_cmd ACTION [NAME] sets the array CMD to the command line for ACTION:
#   init | backup bench | backup tiny (data on stdin) | restore (B to stdout)
# $REPO and $CACHE are set per tool.

restic_version() { "$RESTIC_BIN" version; }
restic_cmd() {
    local pre=(env RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$CACHE" "$RESTIC_BIN")
    case $1 in
        init) CMD=("${pre[@]}" init -q -r "$REPO") ;;
        backup)
            local file=dump.sql
            [[ $2 == tiny ]] && file=tiny.txt
            CMD=("${pre[@]}" backup -q -r "$REPO" --host bench --stdin --stdin-filename "$file") ;;
        restore) CMD=("${pre[@]}" dump -q -r "$REPO" latest /dump.sql) ;;
    esac
}

# The binary's own version, its sha256 prefix and mtime (it may have been
# built from another commit than the one checked out), and the work tree's HEAD.
larder_version() {
    local v wt
    v=$("$LARDER_BIN" --version 2>/dev/null || echo "larder (no --version)")
    v="$v (binary sha256 $(sha256sum "$LARDER_BIN" | cut -c1-12), built $(date -r "$LARDER_BIN" '+%Y-%m-%d %H:%M')"
    if wt=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null); then
        [[ -z $(git -C "$REPO_ROOT" status --porcelain -- src Cargo.toml 2>/dev/null) ]] || wt="$wt+dirty"
        v="$v; work tree $wt"
    fi
    printf '%s)\n' "$v"
}
larder_cmd() {
    local pre=(env LARDER_PASSWORD=bench LARDER_CACHE_DIR="$CACHE" "$LARDER_BIN")
    case $1 in
        init) CMD=("${pre[@]}" init --repo "$REPO") ;;
        backup) CMD=("${pre[@]}" snapshot --repo "$REPO" --name "$2" --stdin) ;;
        restore) CMD=("${pre[@]}" restore latest --repo "$REPO" --name bench) ;;
    esac
}

# --- one tool --------------------------------------------------------------

run_tool() {
    local tool=$1
    case $tool in
        restic) command -v "$RESTIC_BIN" >/dev/null || die "restic not found (apt-get install restic)" ;;
        larder) [[ -x $LARDER_BIN ]] || die "larder binary $LARDER_BIN not found (cargo build --release, or set LARDER_BIN)" ;;
    esac
    [[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"
    [[ -s $INPUT_A && -s $INPUT_B ]] || die "$INPUT_A / $INPUT_B missing; run benches/dump-pair.sh"

    local base="$OUTDIR/compare/$tool"
    WORK="$base"
    REPO="$base/repo"
    CACHE="$base/cache"
    mkdir -p "$base"

    local version size_a size_b
    version=$("${tool}_version" | head -n 1)
    size_a=$(stat -c %s "$INPUT_A")
    size_b=$(stat -c %s "$INPUT_B")
    log "$tool: $version"
    log "$tool: inputs $INPUT_A ($size_a B), $INPUT_B ($size_b B); $RUNS runs"

    local load_start
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    local -a a_wall=() a_rss=() a_cpu=() b_wall=() b_rss=() b_cpu=() r_wall=() r_rss=() r_cpu=()
    local -a after_a=() added_b=() t_wall=() t_rss=() t_added=()
    local run before after
    for ((run = 1; run <= RUNS; run++)); do
        rm -rf "$REPO" "$CACHE"
        "${tool}_cmd" init
        "${CMD[@]}" >/dev/null 2>"$WORK/stderr.out" </dev/null || { cat "$WORK/stderr.out" >&2; die "$tool init failed: ${CMD[*]}"; }
        before=$(repo_bytes "$REPO")

        "${tool}_cmd" backup bench
        timed "$INPUT_A" /dev/null "${CMD[@]}" || die "$tool backup of A failed"
        a_wall+=("$T_WALL"); a_rss+=("$T_RSS"); a_cpu+=("$T_CPU")
        after=$(repo_bytes "$REPO")
        after_a+=("$((after - before))")
        before=$after

        timed "$INPUT_B" /dev/null "${CMD[@]}" || die "$tool backup of B failed"
        b_wall+=("$T_WALL"); b_rss+=("$T_RSS"); b_cpu+=("$T_CPU")
        after=$(repo_bytes "$REPO")
        added_b+=("$((after - before))")

        "${tool}_cmd" restore
        timed /dev/null /dev/null "${CMD[@]}" || die "$tool restore of B failed"
        r_wall+=("$T_WALL"); r_rss+=("$T_RSS"); r_cpu+=("$T_CPU")

        log "$tool run $run: backup A ${a_wall[-1]}s ${a_rss[-1]}KiB, repo ${after_a[-1]}B;" \
            "backup B ${b_wall[-1]}s, +${added_b[-1]}B; restore B ${r_wall[-1]}s ${r_rss[-1]}KiB"
    done

    local verify=skipped
    if [[ $VERIFY -eq 1 ]]; then
        log "$tool: verifying restore of B byte for byte (untimed)"
        "${tool}_cmd" restore
        if "${CMD[@]}" 2>"$WORK/stderr.out" </dev/null | cmp -s - "$INPUT_B"; then
            verify=ok
        else
            verify=FAILED
            cat "$WORK/stderr.out" >&2
            log "$tool: restored B differs from $INPUT_B"
        fi
    fi

    local hi="$base/tiny-input.txt"
    echo hi >"$hi"
    "${tool}_cmd" backup tiny
    for ((run = 1; run <= TINY_RUNS; run++)); do
        before=$(repo_bytes "$REPO")
        timed "$hi" /dev/null "${CMD[@]}" || die "$tool tiny snapshot failed"
        t_wall+=("$T_WALL"); t_rss+=("$T_RSS")
        after=$(repo_bytes "$REPO")
        t_added+=("$((after - before))")
    done
    log "$tool tiny snapshots: ${t_wall[*]} s"

    local m_aw m_bw m_rw
    m_aw=$(median "${a_wall[@]}")
    m_bw=$(median "${b_wall[@]}")
    m_rw=$(median "${r_wall[@]}")
    local out="$RESULTS/$tool.tsv"
    {
        printf '# tool\t%s\n' "$tool"
        printf '# version\t%s\n' "$version"
        printf '# date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf '# host\t%s cores, %s\n' "$(nproc)" "$(uname -sr)"
        printf '# input\t%s %s %s %s\n' "$INPUT_A" "$size_a" "$INPUT_B" "$size_b"
        printf '# runs\t%s (tiny: %s); warm page cache\n' "$RUNS" "$TINY_RUNS"
        printf '# verify\t%s\n' "$verify"
        printf '# loadavg\t%s at start, %s at end (other work on the machine skews times)\n' \
            "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf 'metric\tmedian\tunit\tsamples\n'
        row() { local name=$1 unit=$2 value=$3; shift 3; printf '%s\t%s\t%s\t%s\n' "$name" "$value" "$unit" "$(IFS=,; echo "$*")"; }
        row backup_a_time s "$m_aw" "${a_wall[@]}"
        row backup_a_speed MB/s "$(calc "$size_a / 1e6 / $m_aw")"
        row backup_a_peak_rss MiB "$(calc "$(median "${a_rss[@]}") / 1024")" "${a_rss[@]}"
        row backup_a_cpu s "$(median "${a_cpu[@]}")" "${a_cpu[@]}"
        row added_by_a bytes "$(median "${after_a[@]}")" "${after_a[@]}"
        row backup_b_time s "$m_bw" "${b_wall[@]}"
        row backup_b_speed MB/s "$(calc "$size_b / 1e6 / $m_bw")"
        row backup_b_peak_rss MiB "$(calc "$(median "${b_rss[@]}") / 1024")" "${b_rss[@]}"
        row added_by_b bytes "$(median "${added_b[@]}")" "${added_b[@]}"
        row restore_b_time s "$m_rw" "${r_wall[@]}"
        row restore_b_speed MB/s "$(calc "$size_b / 1e6 / $m_rw")"
        row restore_b_peak_rss MiB "$(calc "$(median "${r_rss[@]}") / 1024")" "${r_rss[@]}"
        row restore_b_cpu s "$(median "${r_cpu[@]}")" "${r_cpu[@]}"
        row tiny_snapshot_time s "$(median "${t_wall[@]}")" "${t_wall[@]}"
        row tiny_snapshot_peak_rss MiB "$(calc "$(median "${t_rss[@]}") / 1024")" "${t_rss[@]}"
        row tiny_snapshot_added bytes "$(median "${t_added[@]}")" "${t_added[@]}"
    } >"$out.tmp"
    mv "$out.tmp" "$out"
    log "$tool: results in $out"
    [[ $verify != FAILED ]] || VERIFY_FAILED=1
}

# --- report ----------------------------------------------------------------

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
    local metrics=(backup_a_speed backup_a_time backup_a_peak_rss backup_a_cpu added_by_a
        backup_b_speed backup_b_time backup_b_peak_rss added_by_b
        restore_b_speed restore_b_time restore_b_peak_rss restore_b_cpu
        tiny_snapshot_time tiny_snapshot_peak_rss tiny_snapshot_added)
    local unit r l ratio m
    if [[ ${#tools[@]} -eq 2 && $(meta restic input) != "$(meta larder input)" ]]; then
        log "warning: restic and larder results were measured on different inputs"
    fi

    echo
    for t in "${tools[@]}"; do
        printf '%-7s %s  [%s, verify %s]\n' "$t:" "$(meta "$t" version)" "$(meta "$t" date)" "$(meta "$t" verify)"
    done
    printf 'input: %s; %s\n' "$(meta "${tools[0]}" input)" "$(meta "${tools[0]}" runs)"
    for t in "${tools[@]}"; do printf '%-7s loadavg %s\n' "$t:" "$(meta "$t" loadavg)"; done
    echo
    printf '%-24s %-6s %14s %14s %14s\n' metric unit restic larder larder/restic
    printf '%-24s %-6s %14s %14s %14s\n' ------------------------ ------ -------------- -------------- --------------

    local tsv="$RESULTS/compare.tsv.tmp" json="$RESULTS/compare.json.tmp"
    printf 'metric\tunit\trestic\tlarder\tlarder_over_restic\n' >"$tsv"
    {
        printf '{\n  "generated": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf '  "note": "medians; MB = 1e6 bytes; warm page cache; ratio = larder / restic (higher is better only for *_speed)",\n'
        printf '  "tools": {'
        local sep=""
        for t in "${tools[@]}"; do
            printf '%s\n    "%s": {"version": "%s", "date": "%s", "input": "%s", "runs": "%s", "verify": "%s"}' \
                "$sep" "$t" "$(meta "$t" version | sed 's/"/\\"/g')" "$(meta "$t" date)" \
                "$(meta "$t" input)" "$(meta "$t" runs)" "$(meta "$t" verify)"
            sep=,
        done
        printf '\n  },\n  "metrics": {'
    } >"$json"
    local sep=""
    for m in "${metrics[@]}"; do
        unit=$(awk -F'\t' -v m="$m" '$1 == m { print $3; exit }' "$RESULTS/${tools[0]}.tsv")
        r=$(value restic "$m"); l=$(value larder "$m")
        ratio=
        if [[ -n $r && -n $l ]]; then
            ratio=$(awk -v a="$l" -v b="$r" 'BEGIN { if (b == 0) print (a == 0 ? "1" : "inf"); else printf "%.3f\n", a / b }')
        fi
        printf '%-24s %-6s %14s %14s %14s\n' "$m" "$unit" "${r:--}" "${l:--}" "${ratio:--}"
        printf '%s\t%s\t%s\t%s\t%s\n' "$m" "$unit" "$r" "$l" "$ratio" >>"$tsv"
        printf '%s\n    "%s": {"unit": "%s", "restic": %s, "larder": %s, "larder_over_restic": %s}' \
            "$sep" "$m" "$unit" "${r:-null}" "${l:-null}" "${ratio:-null}" >>"$json"
        sep=,
    done
    printf '\n  }\n}\n' >>"$json"
    mv "$tsv" "$RESULTS/compare.tsv"
    mv "$json" "$RESULTS/compare.json"
    echo
    echo "speed: higher is better; time, RSS, CPU and bytes: lower is better."
    echo "wrote $RESULTS/compare.tsv, $RESULTS/compare.json"
}

VERIFY_FAILED=0
CMD=()
if [[ $REPORT_ONLY -eq 0 ]]; then
    for tool in restic larder; do
        [[ -z $ONLY || $ONLY == "$tool" ]] || continue
        run_tool "$tool"
    done
fi
report
[[ $VERIFY_FAILED -eq 0 ]] || die "a restore did not reproduce its input (see above)"
