#!/usr/bin/env bash
# Build the reproducible "dump pair" benchmark data set for larder.
#
#   benches/dump-pair.sh [OUTDIR]
#
# OUTDIR defaults to ${LARDER_BENCH_DIR:-/var/tmp/larder-bench}. Produces:
#   OUTDIR/A.sql   plain pg_dump of a fresh `pgbench -i -s 60` database
#   OUTDIR/A.dump  same state, `pg_dump -Fc -Z0` (custom format, uncompressed)
#   OUTDIR/B.sql   plain pg_dump after an OLTP round (pgbench transactions,
#                  a 100k-row range UPDATE, 50k INSERTs into pgbench_history)
#   OUTDIR/B.dump  same state, custom format, uncompressed
#
# Idempotent: finished outputs are kept and their steps skipped; outputs are
# written to *.tmp and renamed, so an interrupted run never leaves a
# half-written A.sql behind. The PostgreSQL cluster is a throwaway one in
# OUTDIR/pgdata, listening on 127.0.0.1:${PG_BENCH_PORT:-55432} and a unix
# socket in OUTDIR/pgsock only; it is stopped when the script exits.
#
# Knobs (environment): PG_BENCH_PORT (55432), PG_BENCH_SCALE (60),
# PG_BENCH_CLIENTS (2), PG_BENCH_TXNS (20000 per client), PG_BENCH_SEED (4242),
# PG_BENCH_FILLER (blank | hex), PG_BENCH_KEEP_CLUSTER (0; 1 keeps OUTDIR/pgdata
# after all four dumps exist, otherwise it is deleted). pgbench leaves the 84-char filler column of
# pgbench_accounts blank, which makes the dump compress ~100x; "hex" fills it
# with md5 hex digits of the row id (deterministic, compresses ~2x) for a less
# flattering data set. The knobs are recorded in OUTDIR/dataset.conf and a
# later run with different knobs refuses to mix data sets: use another OUTDIR.
set -euo pipefail

OUTDIR=${1:-${LARDER_BENCH_DIR:-/var/tmp/larder-bench}}
PORT=${PG_BENCH_PORT:-55432}
SCALE=${PG_BENCH_SCALE:-60}
CLIENTS=${PG_BENCH_CLIENTS:-2}
TXNS=${PG_BENCH_TXNS:-20000}
SEED=${PG_BENCH_SEED:-4242}
FILLER=${PG_BENCH_FILLER:-blank}
case $FILLER in blank|hex) ;; *) echo "PG_BENCH_FILLER must be blank or hex" >&2; exit 2 ;; esac
DB=pgbench

log() { printf '[dump-pair %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

have_all_outputs() {
    local f
    for f in A.sql A.dump B.sql B.dump; do
        [[ -s "$OUTDIR/$f" ]] || return 1
    done
}

print_sizes() {
    local f
    log "data set in $OUTDIR:"
    for f in A.sql B.sql A.dump B.dump; do
        if [[ -e "$OUTDIR/$f" ]]; then
            printf '  %-7s %12d bytes  (%s)\n' "$f" "$(stat -c %s "$OUTDIR/$f")" \
                "$(du -h --apparent-size "$OUTDIR/$f" | cut -f1)"
        fi
    done
}

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

CONF="scale=$SCALE clients=$CLIENTS txns=$TXNS seed=$SEED filler=$FILLER"
if [[ -s "$OUTDIR/dataset.conf" ]]; then
    [[ $(cat "$OUTDIR/dataset.conf") == "$CONF" ]] ||
        die "$OUTDIR was built with '$(cat "$OUTDIR/dataset.conf")', not '$CONF'; use another OUTDIR"
else
    printf '%s\n' "$CONF" >"$OUTDIR/dataset.conf"
fi

if have_all_outputs; then
    log "all outputs already present, nothing to do"
    print_sizes
    exit 0
fi

# --- PostgreSQL binaries -----------------------------------------------------
find_pgbin() {
    local d
    # newest major version first
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/pgbench" && -x "$d/pg_dump" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

if ! PGBIN=$(find_pgbin); then
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and we are not root; apt-get install postgresql"
    log "installing PostgreSQL from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(find_pgbin) || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
fi
log "using $PGBIN ($("$PGBIN/postgres" --version))"

PGDATA="$OUTDIR/pgdata"
SOCKDIR="$OUTDIR/pgsock"
STAGE_FILE="$OUTDIR/pgdata.stage" # loaded | changing | changed

# Run a command as the cluster owner: "postgres" when we are root (the server
# refuses to run as root), ourselves otherwise.
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' user; install the postgresql package"
    PGOWNER=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    PGOWNER=$(id -un)
    as_owner() { "$@"; }
fi

# Client tools with the connection settings of the throwaway cluster.
pgc() {
    as_owner env PGHOST="$SOCKDIR" PGPORT="$PORT" PGUSER=postgres PGDATABASE="$DB" "$@"
}

stage() { cat "$STAGE_FILE" 2>/dev/null || true; }
set_stage() { printf '%s\n' "$1" >"$STAGE_FILE"; }

# --- cluster -------------------------------------------------------------------
STARTED=0
stop_cluster() {
    if [[ $STARTED -eq 1 ]]; then
        log "stopping cluster"
        as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
        STARTED=0
    fi
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    log "initdb in $PGDATA"
    rm -rf "$PGDATA" "$STAGE_FILE"
    mkdir -p "$PGDATA"
    chown "$PGOWNER" "$PGDATA"
    chmod 700 "$PGDATA"
    as_owner test -w "$PGDATA" || die "$PGOWNER cannot write $PGDATA (is a parent directory of OUTDIR private?)"
    as_owner "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
fi
mkdir -p "$SOCKDIR"
chown "$PGOWNER" "$SOCKDIR"

if as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    log "cluster already running; will stop it at the end"
else
    log "starting cluster on 127.0.0.1:$PORT"
    # Throwaway cluster: durability off for speed; autovacuum off so that the
    # physical row order (= dump order) depends only on our workload.
    as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 120 \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCKDIR \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c autovacuum=off -c max_wal_size=4GB -c shared_buffers=512MB" \
        start >/dev/null || { tail -n 30 "$PGDATA/server.log" >&2; die "pg_ctl start failed"; }
fi
STARTED=1

db_exists() {
    [[ $(pgc "$PGBIN/psql" -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'") == 1 ]]
}

# Fresh `pgbench -i` database, deterministic content.
load_fresh() {
    log "creating database $DB with pgbench -i -s $SCALE"
    rm -f "$STAGE_FILE"
    if db_exists; then
        pgc "$PGBIN/dropdb" "$DB"
    fi
    pgc "$PGBIN/createdb" "$DB"
    pgc "$PGBIN/pgbench" -i -s "$SCALE" -q "$DB" >&2
    if [[ $FILLER == hex ]]; then
        log "filling pgbench_accounts.filler with md5 hex (then VACUUM FULL, keeps aid order)"
        pgc "$PGBIN/psql" -v ON_ERROR_STOP=1 -q <<'SQL'
UPDATE pgbench_accounts
   SET filler = md5(aid::text) || md5((-aid)::text) || left(md5((aid * 3)::text), 20);
VACUUM FULL pgbench_accounts;
VACUUM ANALYZE;
SQL
    fi
    set_stage loaded
}

# The OLTP round between A and B.
apply_changes() {
    set_stage changing
    log "pgbench: $CLIENTS clients x $TXNS transactions (tpcb-like), seed $SEED"
    pgc "$PGBIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -t "$TXNS" --random-seed="$SEED" "$DB" >&2
    log "range UPDATE of aid 1000000..1100000, 50000 INSERTs into pgbench_history"
    pgc "$PGBIN/psql" -v ON_ERROR_STOP=1 -q <<SQL
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 1
 WHERE aid BETWEEN 1000000 AND 1100000;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
SELECT 1 + (g % (10 * $SCALE)),
       1 + (g % $SCALE),
       1 + ((g::bigint * 7919) % (100000 * $SCALE)),
       (g % 10001) - 5000,
       TIMESTAMP '2024-01-01 00:00:00' + g * INTERVAL '1 second'
  FROM generate_series(1, 50000) AS g;
COMMIT;
SQL
    set_stage changed
}

# dump NAME: writes OUTDIR/NAME.sql and OUTDIR/NAME.dump if missing.
dump() {
    local name=$1
    if [[ ! -s "$OUTDIR/$name.sql" ]]; then
        log "pg_dump (plain) -> $name.sql"
        pgc "$PGBIN/pg_dump" --no-sync "$DB" >"$OUTDIR/$name.sql.tmp"
        mv "$OUTDIR/$name.sql.tmp" "$OUTDIR/$name.sql"
    fi
    if [[ ! -s "$OUTDIR/$name.dump" ]]; then
        log "pg_dump -Fc -Z0 -> $name.dump"
        pgc "$PGBIN/pg_dump" --no-sync -Fc -Z0 "$DB" >"$OUTDIR/$name.dump.tmp"
        mv "$OUTDIR/$name.dump.tmp" "$OUTDIR/$name.dump"
    fi
}

# --- A -------------------------------------------------------------------------
if [[ ! -s "$OUTDIR/A.sql" || ! -s "$OUTDIR/A.dump" ]]; then
    if [[ $(stage) != loaded ]] || ! db_exists; then
        load_fresh
    fi
    dump A
fi

# --- B -------------------------------------------------------------------------
if [[ ! -s "$OUTDIR/B.sql" || ! -s "$OUTDIR/B.dump" ]]; then
    if ! db_exists; then
        load_fresh
    fi
    if [[ $(stage) != changed ]]; then
        # A new OLTP round gives a different B (pgbench's two clients
        # interleave differently): never pair a new B.sql with an old B.dump.
        rm -f "$OUTDIR/B.sql" "$OUTDIR/B.dump"
        [[ $(stage) == loaded ]] || load_fresh # unknown or half-applied: redo
        apply_changes
    fi
    dump B
fi

stop_cluster
# The dumps are all that is needed; the cluster (with its WAL, ~4 GB) is not.
if [[ ${PG_BENCH_KEEP_CLUSTER:-0} != 1 ]] && have_all_outputs; then
    log "removing the throwaway cluster (PG_BENCH_KEEP_CLUSTER=1 keeps it)"
    rm -rf "$PGDATA" "$SOCKDIR" "$STAGE_FILE"
fi
print_sizes
