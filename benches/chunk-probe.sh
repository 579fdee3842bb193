#!/usr/bin/env bash
# Measures what the second dump of a pair adds for several average chunk sizes
# (format-spec/chunker.md "Default sizes").
#
#   benches/chunk-probe.sh [DATADIR] [EXT]     # defaults: ${LARDER_BENCH_DIR:-/var/tmp/larder-bench} sql
#
# For each size: a fresh repository with min = avg/4, max = avg*8 and no coarse chunking (every
# stream cut at that size), snapshot A, snapshot B;
# prints wall time and peak RSS of each run, what A added, and B's added bytes, new raw bytes
# and new chunks (from `snapshot --json`). Needs DATADIR/A.EXT and B.EXT (benches/dump-pair.sh)
# and GNU time (`apt-get install time`).
set -euo pipefail
D=${1:-${LARDER_BENCH_DIR:-/var/tmp/larder-bench}}
EXT=${2:-sql}
BIN=${LARDER_BIN:-target/release/larder}
SIZES=${CHUNK_PROBE_SIZES:-2048 4096 8192 16384 65536 1048576}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/chunk-probe.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export LARDER_PASSWORD=probe
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['snapshot']; print(*[d[k] for k in sys.argv[2:]])" "$@"; }
for avg in $SIZES; do
  min=$((avg / 4)); max=$((avg * 8)); [ "$max" -gt 16777216 ] && max=16777216
  export LARDER_REPOSITORY=$WORK/repo-$avg LARDER_CACHE_DIR=$WORK/cache-$avg
  "$BIN" init --chunk-min "$min" --chunk-avg "$avg" --chunk-max "$max" --no-coarse-chunking \
    --kdf-memory 19 --kdf-iterations 2 --kdf-parallelism 1 >/dev/null
  ta=$( { /usr/bin/time -f '%e s %M KiB' "$BIN" snapshot --name probe --stdin --json < "$D/A.$EXT" > "$WORK/a.json"; } 2>&1 )
  tb=$( { /usr/bin/time -f '%e s %M KiB' "$BIN" snapshot --name probe --stdin --json < "$D/B.$EXT" > "$WORK/b.json"; } 2>&1 )
  read -r b_added b_raw b_new <<<"$(field "$WORK/b.json" bytes_added raw_bytes_added new_chunks)"
  printf 'avg=%-8s A: [%s] adds %s B, %s chunks | B: [%s] adds %s B, new raw %s B, new chunks %s\n' \
    "$avg" "$ta" "$(field "$WORK/a.json" bytes_added)" "$(field "$WORK/a.json" chunks)" \
    "$tb" "$b_added" "$b_raw" "$b_new"
  rm -rf "$LARDER_REPOSITORY" "$LARDER_CACHE_DIR"
done
