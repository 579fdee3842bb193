#!/usr/bin/env bash
# larder on S3 against larder on a local directory, on the same pg_dump pair.
#
#   benches/s3-compare.sh [--only local,moto,s3s] [--runs N] [--format sql|dump]
#                         [--snapshots-only] [--no-ceiling] [--no-verify]
#                         [--report-only] [OUTDIR]
#
# OUTDIR defaults to ${LARDER_BENCH_DIR:-/var/tmp/larder-bench-1g} and must hold
# A.sql/B.sql (or A.dump/B.dump with --format dump); the ~1 GiB pair comes from
#   PG_BENCH_SCALE=110 PG_BENCH_FILLER=hex benches/dump-pair.sh /var/tmp/larder-bench-1g
#
# Targets (--only picks some, comma-separated; default all three):
#   local  a repository directory, OUTDIR/s3-compare/local/repo
#   moto   s3://bench/repo on moto_server (pure Python, objects in RAM), the
#          server the tests use; MOTO_BIN (default moto_server)
#   s3s    s3://bench/repo on s3s-fs (Rust, hyper; objects are files in
#          OUTDIR/s3-compare/s3s/data, on the same disk as the local repository);
#          S3S_BIN (default /opt/s3s/nodelay/bin/s3s-fs). Its binary does not set
#          TCP_NODELAY, so every small answer waits for the client's delayed ACK
#          (~27 ms per range GET); the bench uses a build patched to set it:
#            cargo install s3s-fs@0.14.1 --features binary --locked --root /opt/s3s
#            cp -r ~/.cargo/registry/src/*/s3s-fs-0.14.1 /opt/s3s/src-nodelay
#            sed -i 's|^\(\s*\)let conn = http_server.serve_connection|\1let _ = socket.set_nodelay(true);\n&|' \
#                /opt/s3s/src-nodelay/src/main.rs
#            cargo install --path /opt/s3s/src-nodelay --features binary --locked --root /opt/s3s/nodelay
#          (S3S_BIN=/opt/s3s/bin/s3s-fs measures the stock one)
# Servers listen on 127.0.0.1 on a free port; each run starts its own server
# (moto keeps every object in memory) and stops it at the end of the run.
#
# N runs (default 3), each with a fresh repository, catalog and server per
# target. The targets are interleaved so that they see similar load on a shared
# machine: first every target's snapshots, seconds apart, then every target's
# reads:
#   1. first snapshot: `larder snapshot --stdin --json` of A   wall, CPU, RSS
#   2. second snapshot: the same with B (parent A)             wall, CPU, RSS
#   3. warm open: `larder stats --json` (catalog up to date)    wall
#   4. cold open: the same after deleting the catalog           wall
#   5. restore B: `larder restore latest -o RESTORE_DIR/FILE --json`   wall, CPU, RSS
#   6. restore A: the same with A's snapshot id (A's chunks are adjacent in its
#      packs, B's are spread over A's and B's: the two bound the range reads)
# --snapshots-only: steps 1 and 2 alone (no ceiling either), for more runs in
# little time (restore B takes ~5 min on moto); results in results/s3-snapshots/.
# and for each step larder's own request counts (the `requests` object of its
# JSON: PUT, GET, LIST, DELETE, bytes up and down) and, on S3, the server's CPU
# time (utime+stime of its process from /proc) and, on moto, the number of
# requests in its log. The first run's restores are compared with B and A byte
# for byte (untimed; --no-verify skips it). RESTORE_DIR defaults to /dev/shm (tmpfs, so
# that restore times do not include a disk write of 1 GiB); restore writes a
# temporary file there, fsyncs and renames it.
#
# Ceiling (once per server, unless --no-ceiling): a fresh server takes the same
# number of bytes as the median first snapshot uploaded, as 16 MiB objects PUT
# by curl, 4 at a time (larder's uploads in flight on S3), then GETs them back
# 4 at a time: MB/s of the server alone, no larder.
#
# A `sync -f` precedes each timed step. The page cache is warm (inputs are read
# once before the runs). MB = 10^6 bytes. Medians of the runs; samples are kept.
# Results: OUTDIR/results/s3/<format>/<target>.tsv (one file per target, each
# overwritten only by its own runs) and OUTDIR/results/s3/<format>/compare.tsv
# (all targets, with <target>/local ratios for times and speeds), printed as a
# table; --report-only prints it again from the stored files. The last run's
# outputs (JSON, stderr, server log) stay in OUTDIR/s3-compare/<target>/log/.
#
# Environment: LARDER_BIN (default <repo>/target/release/larder; copy it out of a
# shared tree before a long run), MOTO_BIN, S3S_BIN, RESTORE_DIR. Password
# "bench"; repositories are initialised at the Argon2id floor (--kdf-memory 19
# --kdf-iterations 2 --kdf-parallelism 1). Needs /usr/bin/time, jq, curl and
# python3.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

ONLY=local,moto,s3s
RUNS=3
FORMAT=sql
CEILING=1
SNAPSHOTS_ONLY=0
VERIFY=1
REPORT_ONLY=0
OUTDIR=

usage() { sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --only) ONLY=${2:?}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --format) FORMAT=${2:?}; shift 2 ;;
        --no-ceiling) CEILING=0; shift ;;
        --snapshots-only) SNAPSHOTS_ONLY=1; CEILING=0; shift ;;
        --no-verify) VERIFY=0; shift ;;
        --report-only) REPORT_ONLY=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "unknown option: $1" >&2; usage 2 >&2 ;;
        *) OUTDIR=$1; shift ;;
    esac
done

ALL_TARGETS=(local moto s3s)
TARGETS=()
IFS=, read -r -a _only <<<"$ONLY"
for t in "${_only[@]}"; do
    case $t in local|moto|s3s) TARGETS+=("$t") ;; *) echo "--only takes local, moto and/or s3s, comma-separated" >&2; exit 2 ;; esac
done
case $FORMAT in sql|dump) ;; *) echo "--format takes sql or dump" >&2; exit 2 ;; esac
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs takes a positive integer" >&2; exit 2; }

OUTDIR=${OUTDIR:-${LARDER_BENCH_DIR:-/var/tmp/larder-bench-1g}}
LARDER_BIN=${LARDER_BIN:-$REPO_ROOT/target/release/larder}
MOTO_BIN=${MOTO_BIN:-moto_server}
S3S_BIN=${S3S_BIN:-/opt/s3s/nodelay/bin/s3s-fs}
RESTORE_DIR=${RESTORE_DIR:-/dev/shm}

log() { printf '[s3-compare %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -d $OUTDIR ]] || die "$OUTDIR does not exist; build it with benches/dump-pair.sh (see above)"
OUTDIR=$(cd "$OUTDIR" && pwd)
INPUT_A="$OUTDIR/A.$FORMAT"
INPUT_B="$OUTDIR/B.$FORMAT"
RESULTS="$OUTDIR/results/s3/$FORMAT"
[[ $SNAPSHOTS_ONLY -eq 0 ]] || RESULTS="$OUTDIR/results/s3-snapshots/$FORMAT"
mkdir -p "$RESULTS"

BUCKET=bench
ACCESS_KEY=larder-bench
SECRET_KEY=larder-bench-secret
REGION=us-east-1
PACK_SIZE=$((16 * 1024 * 1024)) # larder's default pack size, the ceiling's object size
UPLOADS_IN_FLIGHT=4             # larder's packs in flight on S3 (backend/object_store.rs)
CLK_TCK=$(getconf CLK_TCK)

# --- helpers ---------------------------------------------------------------

# median of the numbers given as arguments (mean of the middle two if even)
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        if (m == int(m)) printf "%.0f\n", m; else printf "%.10g\n", m }'
}
# calc EXPR: evaluate with awk, 3 decimals
calc() { awk "BEGIN { printf \"%.3f\n\", $* }"; }
now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the S3 servers --------------------------------------------------------
# One per S3 target and run, all up at once during a run's snapshots (so that the
# targets' snapshots are taken seconds apart, at similar load). PIDS[target] and
# ENDPOINTS[target]; use_target sets SERVER_PID and ENDPOINT from them.

declare -A PIDS=() ENDPOINTS=()
SERVER_PID=
ENDPOINT=
server_stop() {
    [[ -n $SERVER_PID ]] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    PIDS[$TARGET]=
}
stop_all_servers() {
    local p
    for p in "${PIDS[@]}"; do
        [[ -z $p ]] || kill "$p" 2>/dev/null || true
    done
}
trap stop_all_servers EXIT

# curl signed with the bench credentials (moto ignores the signature, s3s-fs checks it
# and wants x-amz-content-sha256, which curl 7.88 does not send by itself)
s3curl() {
    curl -sS --fail --no-progress-meter --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# server_start LOG: starts the current target's server with its log in WORK/LOG and
# an empty bucket (s3s-fs: an empty data directory too)
server_start() {
    local logf=$WORK/$1 port
    port=$(free_port)
    ENDPOINT="http://127.0.0.1:$port"
    case $TARGET in
        moto) "$MOTO_BIN" -H 127.0.0.1 -p "$port" >"$logf" 2>&1 </dev/null & ;;
        s3s)
            rm -rf "$WORK/data"
            mkdir -p "$WORK/data"
            "$S3S_BIN" --host 127.0.0.1 --port "$port" --access-key "$ACCESS_KEY" \
                --secret-key "$SECRET_KEY" "$WORK/data" >"$logf" 2>&1 </dev/null & ;;
    esac
    SERVER_PID=$!
    PIDS[$TARGET]=$SERVER_PID
    ENDPOINTS[$TARGET]=$ENDPOINT
    local deadline=$((SECONDS + 60))
    until curl -s -o /dev/null "$ENDPOINT/"; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 5 "$logf" >&2; die "$TARGET server exited"; }
        ((SECONDS < deadline)) || die "$TARGET server did not answer on $ENDPOINT within 60 s"
        sleep 0.2
    done
    s3curl -X PUT -o /dev/null "$ENDPOINT/$BUCKET" || die "cannot create bucket $BUCKET on $TARGET"
}

# server_cpu: utime+stime of the server process (all its threads), in seconds
server_cpu() {
    [[ -n $SERVER_PID ]] || { echo 0; return; }
    local stat
    stat=$(<"/proc/$SERVER_PID/stat")
    stat=${stat##*) } # fields after "(comm) "; utime and stime are fields 14 and 15
    awk -v t="$CLK_TCK" '{ printf "%.2f\n", ($12 + $13) / t }' <<<"$stat"
}
# server_peak_rss: the server's peak RSS (VmHWM), in KiB
server_peak_rss() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$SERVER_PID/status"; }
# server_requests LOGFILE: requests answered so far, from moto's request log (empty
# for s3s-fs, which logs none at the default level)
server_requests() {
    [[ $TARGET == moto ]] || return 0
    grep -c 'HTTP/1\.[01]" [0-9]' "$1" || true
}

# --- targets and steps -----------------------------------------------------

# SAMPLES[target/metric] = space-separated samples
declare -A SAMPLES=() VERIFY_STATE=() SERVER_VERSION=() ID_A=()
add() { SAMPLES[$TARGET/$1]+="$2 "; }
# last METRIC: the current target's latest sample
last() { local -a v; read -r -a v <<<"${SAMPLES[$TARGET/$1]}"; echo "${v[-1]}"; }

# use_target TARGET: sets the globals every step reads
use_target() {
    TARGET=$1
    WORK="$OUTDIR/s3-compare/$TARGET"
    LOGDIR="$WORK/log"
    CACHE="$WORK/cache"
    SERVER_PID=${PIDS[$TARGET]:-}
    ENDPOINT=${ENDPOINTS[$TARGET]:-}
    case $TARGET in
        local) REPO="$WORK/repo" ;;
        *) REPO="s3://$BUCKET/repo" ;;
    esac
}

# check_target TARGET: the server is there; records its version
check_target() {
    use_target "$1"
    case $TARGET in
        moto)
            command -v "$MOTO_BIN" >/dev/null || die "moto_server not found (pip install 'moto[server]', or set MOTO_BIN)"
            SERVER_VERSION[$TARGET]="moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')" ;;
        s3s)
            [[ -x $S3S_BIN ]] || die "s3s-fs not found at $S3S_BIN (see the top of this script, or set S3S_BIN)"
            SERVER_VERSION[$TARGET]="$("$S3S_BIN" --version 2>/dev/null || echo 's3s-fs ?') ($S3S_BIN)" ;;
        local) SERVER_VERSION[$TARGET]=- ;;
    esac
    VERIFY_STATE[$TARGET]=skipped
    [[ $VERIFY -eq 0 || $SNAPSHOTS_ONLY -eq 1 ]] || VERIFY_STATE[$TARGET]=pending
    mkdir -p "$LOGDIR"
}

# larder_cmd ARGS...: sets CMD to larder with the target's repository and environment
larder_cmd() {
    local -a envs=(env -u AWS_PROFILE -u AWS_DEFAULT_REGION -u AWS_SESSION_TOKEN
        -u AWS_ENDPOINT -u AWS_ENDPOINT_URL_S3 -u AWS_ALLOW_HTTP -u AWS_VIRTUAL_HOSTED_STYLE_REQUEST
        LARDER_PASSWORD=bench LARDER_CACHE_DIR="$CACHE")
    if [[ $TARGET != local ]]; then
        envs+=(AWS_ENDPOINT_URL="$ENDPOINT" AWS_ACCESS_KEY_ID="$ACCESS_KEY"
            AWS_SECRET_ACCESS_KEY="$SECRET_KEY" AWS_REGION="$REGION")
    fi
    CMD=("${envs[@]}" "$LARDER_BIN" "$@" --repo "$REPO")
}

# step NAME IN ARGS...: runs larder ARGS with stdin IN, stdout to LOGDIR/NAME.json,
# under /usr/bin/time; adds NAME_{time,cpu,rss,server_cpu,server_requests} and the
# request counts of its JSON.
step() {
    local name=$1 in=$2; shift 2
    larder_cmd "$@"
    sync -f "$WORK"
    local c0 r0 u s wall rss
    c0=$(server_cpu)
    r0=$(server_requests "$WORK/server.log")
    if ! /usr/bin/time -f '%e %M %U %S' -o "$LOGDIR/$name.time" "${CMD[@]}" \
        <"$in" >"$LOGDIR/$name.json" 2>"$LOGDIR/$name.err"; then
        cat "$LOGDIR/$name.err" >&2
        die "$TARGET: $name failed: ${CMD[*]}"
    fi
    read -r wall rss u s < <(tail -n 1 "$LOGDIR/$name.time")
    add "${name}_time" "$wall"
    add "${name}_cpu" "$(calc "$u + $s")"
    add "${name}_rss" "$(calc "$rss / 1024")"
    if [[ $TARGET != local ]]; then
        add "${name}_server_cpu" "$(calc "$(server_cpu) - $c0")"
    fi
    if [[ $TARGET == moto ]]; then
        add "${name}_server_requests" "$(($(server_requests "$WORK/server.log") - r0))"
    fi
    local k n
    for k in put get list delete bytes_up bytes_down; do
        n=$(jq -e ".requests.$k" "$LOGDIR/$name.json") || die "$TARGET: no requests.$k in $LOGDIR/$name.json"
        add "${name}_$k" "$n"
    done
    STEP_WALL=$wall
}

# snapshots: a fresh repository (and server), then the first and second snapshot
snapshots() {
    rm -rf "$CACHE" "$WORK/repo"
    [[ $TARGET == local ]] || server_start server.log

    larder_cmd init --kdf-memory 19 --kdf-iterations 2 --kdf-parallelism 1
    "${CMD[@]}" >/dev/null 2>"$LOGDIR/init.err" </dev/null ||
        { cat "$LOGDIR/init.err" >&2; die "$TARGET: init failed: ${CMD[*]}"; }

    step first "$INPUT_A" snapshot --name bench --stdin --json
    add first_speed "$(calc "$SIZE_A / 1e6 / $STEP_WALL")"
    add first_upload_speed "$(calc "$(jq .requests.bytes_up "$LOGDIR/first.json") / 1e6 / $STEP_WALL")"
    add first_packs "$(jq .packs_added "$LOGDIR/first.json")"
    add first_bytes_added "$(jq .snapshot.bytes_added "$LOGDIR/first.json")"
    ID_A[$TARGET]=$(jq -r .id "$LOGDIR/first.json")

    step second "$INPUT_B" snapshot --name bench --stdin --json
    add second_speed "$(calc "$SIZE_B / 1e6 / $STEP_WALL")"
    add second_packs "$(jq .packs_added "$LOGDIR/second.json")"
    add second_bytes_added "$(jq .snapshot.bytes_added "$LOGDIR/second.json")"
}

# reads: open with a warm and a cold catalog, restore B and A; stops the server
reads() {
    step warm_open /dev/null stats --json

    rm -rf "$CACHE"
    step cold_open /dev/null stats --json

    local out="$RESTORE_DIR/larder-s3-compare-$$.out"
    rm -f "$out"
    step restore_b /dev/null restore latest --name bench -o "$out" --json
    add restore_b_speed "$(calc "$SIZE_B / 1e6 / $STEP_WALL")"
    if [[ ${VERIFY_STATE[$TARGET]} == pending ]] && ! cmp -s "$out" "$INPUT_B"; then
        VERIFY_STATE[$TARGET]=FAILED
        log "$TARGET: restored B differs from $INPUT_B"
    fi
    rm -f "$out"
    step restore_a /dev/null restore "${ID_A[$TARGET]}" -o "$out" --json
    add restore_a_speed "$(calc "$SIZE_A / 1e6 / $STEP_WALL")"
    if [[ ${VERIFY_STATE[$TARGET]} == pending ]]; then
        if cmp -s "$out" "$INPUT_A"; then
            VERIFY_STATE[$TARGET]=ok
        else
            VERIFY_STATE[$TARGET]=FAILED
            log "$TARGET: restored A differs from $INPUT_A"
        fi
    fi
    rm -f "$out"

    if [[ $TARGET != local ]]; then
        add server_peak_rss "$(calc "$(server_peak_rss) / 1024")"
        server_stop
    fi
}

# ceiling: a fresh server takes the median first snapshot's upload as 16 MiB PUTs,
# UPLOADS_IN_FLIGHT at a time (one curl, --parallel), then gives them back as GETs;
# adds ceiling_{put,get}_{time,speed,server_cpu} and ceiling_objects.
ceiling() {
    local -a up
    read -r -a up <<<"${SAMPLES[$TARGET/first_bytes_up]}"
    local bytes n i t0 c0 wall
    bytes=$(median "${up[@]}")
    n=$(awk -v b="$bytes" -v p="$PACK_SIZE" 'BEGIN { printf "%d\n", (b + p - 1) / p }')
    local obj="$RESTORE_DIR/larder-s3-compare-$$.obj"
    head -c "$PACK_SIZE" /dev/urandom >"$obj"
    server_start ceiling.log
    log "$TARGET: ceiling: $n PUTs of 16 MiB, $UPLOADS_IN_FLIGHT at a time, then $n GETs"
    local -a puts=() gets=()
    for ((i = 1; i <= n; i++)); do
        puts+=(-o /dev/null -T "$obj" "$ENDPOINT/$BUCKET/ceiling/$i")
        gets+=(-o /dev/null "$ENDPOINT/$BUCKET/ceiling/$i")
    done
    local par=(--parallel --parallel-immediate --parallel-max "$UPLOADS_IN_FLIGHT")
    c0=$(server_cpu); t0=$(now)
    s3curl "${par[@]}" "${puts[@]}" || die "$TARGET: ceiling PUTs failed"
    wall=$(calc "$(now) - $t0")
    add ceiling_put_time "$wall"
    add ceiling_put_speed "$(calc "$n * $PACK_SIZE / 1e6 / $wall")"
    add ceiling_put_server_cpu "$(calc "$(server_cpu) - $c0")"
    c0=$(server_cpu); t0=$(now)
    s3curl "${par[@]}" "${gets[@]}" || die "$TARGET: ceiling GETs failed"
    wall=$(calc "$(now) - $t0")
    add ceiling_get_time "$wall"
    add ceiling_get_speed "$(calc "$n * $PACK_SIZE / 1e6 / $wall")"
    add ceiling_get_server_cpu "$(calc "$(server_cpu) - $c0")"
    add ceiling_objects "$n"
    [[ $TARGET != moto ]] || add ceiling_server_requests "$(server_requests "$WORK/ceiling.log")"
    server_stop
    rm -f "$obj"
}

# per_run_ratios: STEP_over_local = this target's time / local's, run by run (the
# targets of a run are measured minutes apart, so these are less noisy than the ratio
# of the medians)
per_run_ratios() {
    local step i
    local -a mine theirs
    [[ $TARGET != local && -n ${SAMPLES[local/first_time]:-} ]] || return 0
    for step in first second restore_b restore_a; do
        [[ -n ${SAMPLES[$TARGET/${step}_time]:-} ]] || continue
        read -r -a mine <<<"${SAMPLES[$TARGET/${step}_time]}"
        read -r -a theirs <<<"${SAMPLES[local/${step}_time]}"
        for i in "${!mine[@]}"; do
            add "${step}_over_local" "$(calc "${mine[$i]} / ${theirs[$i]}")"
        done
    done
}

# write_results: OUTDIR/results/s3/<format>/<target>.tsv, medians and samples
write_results() {
    local tsv="$RESULTS/$TARGET.tsv" m unit
    local -a samples
    per_run_ratios
    {
        printf '# target\t%s\n' "$TARGET"
        printf '# version\t%s\n' "$LARDER_VERSION"
        printf '# server\t%s\n' "${SERVER_VERSION[$TARGET]}"
        printf '# repository\t%s\n' "$REPO"
        printf '# date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf '# host\t%s cores, %s\n' "$(nproc)" "$(uname -sr)"
        printf '# input\t%s %s %s %s\n' "$INPUT_A" "$SIZE_A" "$INPUT_B" "$SIZE_B"
        printf '# runs\t%s, targets interleaved (%s); warm page cache; restore to %s\n' \
            "$RUNS" "${TARGETS[*]}" "$RESTORE_DIR"
        printf '# verify\t%s\n' "${VERIFY_STATE[$TARGET]}"
        printf '# loadavg\t%s at start, %s at end (other work on the machine skews times)\n' \
            "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf 'metric\tmedian\tunit\tsamples\n'
        for m in "${METRICS[@]}"; do
            [[ -n ${SAMPLES[$TARGET/$m]:-} ]] || continue
            unit=$(metric_unit "$m")
            read -r -a samples <<<"${SAMPLES[$TARGET/$m]}"
            printf '%s\t%s\t%s\t%s\n' "$m" "$(median "${samples[@]}")" "$unit" "$(IFS=,; echo "${samples[*]}")"
        done
    } >"$tsv.tmp"
    mv "$tsv.tmp" "$tsv"
    log "$TARGET: results in $tsv"
    [[ ${VERIFY_STATE[$TARGET]} != FAILED ]] || VERIFY_FAILED=1
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

# --- metrics and report ----------------------------------------------------

STEPS=(first second warm_open cold_open restore_b restore_a)
METRICS=(first_time first_over_local first_speed first_upload_speed first_cpu first_rss first_server_cpu
    first_packs first_bytes_added)
for _s in "${STEPS[@]}"; do
    [[ $_s == first ]] || METRICS+=("${_s}_time")
    case $_s in second|restore_?) METRICS+=("${_s}_over_local") ;; esac
    [[ $_s == first ]] || METRICS+=("${_s}_cpu" "${_s}_rss" "${_s}_server_cpu")
    case $_s in second) METRICS+=(second_speed second_packs second_bytes_added) ;; restore_?) METRICS+=("${_s}_speed") ;; esac
    METRICS+=("${_s}_put" "${_s}_get" "${_s}_list" "${_s}_delete" "${_s}_bytes_up" "${_s}_bytes_down" "${_s}_server_requests")
done
METRICS+=(server_peak_rss ceiling_objects ceiling_put_time ceiling_put_speed ceiling_put_server_cpu
    ceiling_get_time ceiling_get_speed ceiling_get_server_cpu ceiling_server_requests)

metric_unit() {
    case $1 in
        *_speed) echo MB/s ;;
        *_time|*_cpu) echo s ;;
        *_rss) echo MiB ;;
        *_over_local) echo ratio ;;
        *_bytes_*) echo bytes ;;
        *) echo count ;;
    esac
}

value() { [[ -s "$RESULTS/$1.tsv" ]] && awk -F'\t' -v m="$2" '$1 == m { print $2 }' "$RESULTS/$1.tsv"; return 0; }
meta() { [[ -s "$RESULTS/$1.tsv" ]] && awk -F'\t' -v k="# $2" '$1 == k { print $2 }' "$RESULTS/$1.tsv"; return 0; }

report() {
    local targets=() t
    for t in "${ALL_TARGETS[@]}"; do [[ -s "$RESULTS/$t.tsv" ]] && targets+=("$t"); done
    [[ ${#targets[@]} -gt 0 ]] || die "no results in $RESULTS"
    for t in "${targets[@]}"; do
        [[ $(meta "$t" input) == "$(meta "${targets[0]}" input)" ]] ||
            log "warning: $t and ${targets[0]} were measured on different inputs"
    done

    echo
    for t in "${targets[@]}"; do
        printf '%-6s %s; server %s  [%s, verify %s, loadavg %s]\n' "$t:" "$(meta "$t" version)" \
            "$(meta "$t" server)" "$(meta "$t" date)" "$(meta "$t" verify)" "$(meta "$t" loadavg)"
    done
    printf 'input: %s; %s\n\n' "$(meta "${targets[0]}" input)" "$(meta "${targets[0]}" runs)"

    local -a head=(metric unit)
    for t in "${targets[@]}"; do
        head+=("$t")
        [[ $t == local || ! -s "$RESULTS/local.tsv" ]] || head+=("$t/local")
    done
    local tsv="$RESULTS/compare.tsv.tmp" m unit v l row
    (IFS=$'\t'; echo "${head[*]}") >"$tsv"
    for m in "${METRICS[@]}"; do
        unit=$(metric_unit "$m")
        row=("$m" "$unit")
        local any=0
        l=$(value local "$m")
        for t in "${targets[@]}"; do
            v=$(value "$t" "$m")
            [[ -z $v ]] || any=1
            row+=("${v:--}")
            if [[ $t != local && -s "$RESULTS/local.tsv" ]]; then
                if [[ -n $v && -n $l && ( $unit == s || $unit == MB/s ) ]]; then
                    row+=("$(awk -v a="$v" -v b="$l" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f\n", a / b }')")
                else
                    row+=(-)
                fi
            fi
        done
        [[ $any -eq 1 ]] || continue
        (IFS=$'\t'; echo "${row[*]}") >>"$tsv"
    done
    mv "$tsv" "$RESULTS/compare.tsv"
    column -t -s $'\t' "$RESULTS/compare.tsv"
    echo
    echo "medians; <target>/local is the ratio of the medians (times and speeds only); *_over_local is the median of the per-run ratios."
    echo "wrote $RESULTS/compare.tsv"
}

VERIFY_FAILED=0
CMD=()
STEP_WALL=
TARGET=
if [[ $REPORT_ONLY -eq 0 ]]; then
    [[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"
    command -v jq >/dev/null || die "jq missing (apt-get install jq)"
    command -v curl >/dev/null || die "curl missing (apt-get install curl)"
    [[ -x $LARDER_BIN ]] || die "larder binary $LARDER_BIN not found (cargo build --release, or set LARDER_BIN)"
    [[ -s $INPUT_A && -s $INPUT_B ]] || die "$INPUT_A / $INPUT_B missing; run benches/dump-pair.sh"
    SIZE_A=$(stat -c %s "$INPUT_A")
    SIZE_B=$(stat -c %s "$INPUT_B")
    LARDER_VERSION=$(larder_version)
    ordered=()
    for t in "${ALL_TARGETS[@]}"; do
        [[ " ${TARGETS[*]} " == *" $t "* ]] && ordered+=("$t")
    done
    TARGETS=("${ordered[@]}")
    for t in "${TARGETS[@]}"; do check_target "$t"; done
    log "larder: $LARDER_VERSION"
    for t in "${TARGETS[@]}"; do [[ $t == local ]] || log "$t: ${SERVER_VERSION[$t]}"; done
    log "inputs $INPUT_A ($SIZE_A B), $INPUT_B ($SIZE_B B); $RUNS runs of ${TARGETS[*]}"
    cat "$INPUT_A" "$INPUT_B" >/dev/null # warm the page cache
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    for ((run = 1; run <= RUNS; run++)); do
        for t in "${TARGETS[@]}"; do
            use_target "$t"
            snapshots
            log "$t run $run: first $(last first_time)s, second $(last second_time)s"
        done
        for t in "${TARGETS[@]}"; do
            use_target "$t"
            if [[ $SNAPSHOTS_ONLY -eq 1 ]]; then
                [[ $t == local ]] || server_stop
                continue
            fi
            reads
            log "$t run $run: warm open $(last warm_open_time)s, cold open $(last cold_open_time)s," \
                "restore B $(last restore_b_time)s, restore A $(last restore_a_time)s"
        done
    done
    for t in "${TARGETS[@]}"; do
        use_target "$t"
        [[ $t == local || $CEILING -eq 0 ]] || ceiling
        write_results
    done
fi
report
[[ $VERIFY_FAILED -eq 0 ]] || die "a restore did not reproduce its input (see above)"
