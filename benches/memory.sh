#!/usr/bin/env bash
# Peak RSS and throughput of one snapshot of a generated stream, for several stream sizes:
# memory must not grow with the stream (DESIGN.md invariant 7).
#
#   benches/memory.sh [SIZES_GIB...]        # default: 1 8
#   MEMORY_CHUNKS=coarse benches/memory.sh   # every chunk cut at the coarse sizes (256K/1M/2M)
#
# The stream is pseudo-random text-like lines from a fixed seed (compresses about 3x, no
# repeats), produced by larder's own producer mode; then it is restored to /dev/null. Needs
# python3 and GNU time.
set -euo pipefail
BIN=${LARDER_BIN:-target/release/larder}
[ $# -gt 0 ] || set -- 1 8
SIZES=("$@")
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/larder-memory.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export LARDER_PASSWORD=memory LARDER_REPOSITORY=$WORK/repo LARDER_CACHE_DIR=$WORK/cache
GEN=$WORK/gen.py
cat > "$GEN" <<'PY'
import hashlib, sys
total = int(sys.argv[1]) * (1 << 30)
out = sys.stdout.buffer
seed = 0
written = 0
while written < total:
    # 1 MiB of "rows": an id, two numbers and 32 hex digits, like a table dump.
    h = hashlib.blake2b(seed.to_bytes(8, "little"), digest_size=64).digest()
    rows = []
    for i in range(10000):
        x = int.from_bytes(h[(i % 8) * 8:(i % 8) * 8 + 8], "little") ^ (seed * 10000 + i)
        rows.append(b"%d\t%d\t%d\t%032x\n" % (seed * 10000 + i, x % 1000, x % 99991, x * 2654435761 % (1 << 128)))
    buf = b"".join(rows)
    out.write(buf)
    written += len(buf)
    seed += 1
PY
CHUNKS=()
case ${MEMORY_CHUNKS:-default} in
  default) ;;
  coarse) CHUNKS=(--chunk-min 256K --chunk-avg 1M --chunk-max 2M) ;;
  *) echo "MEMORY_CHUNKS is default or coarse" >&2; exit 2 ;;
esac
for gib in "${SIZES[@]}"; do
  rm -rf "$WORK/repo" "$WORK/cache"
  "$BIN" init --kdf-memory 19 --kdf-iterations 2 --kdf-parallelism 1 "${CHUNKS[@]}" >/dev/null
  r=$( { /usr/bin/time -f '%e %M' "$BIN" snapshot --name mem --quiet --json -- python3 "$GEN" "$gib" > "$WORK/s.json"; } 2>&1 | tail -1)
  read -r secs kib <<<"$r"
  bytes=$(python3 -c "import json; print(json.load(open('$WORK/s.json'))['snapshot']['bytes_read'])")
  printf '%s GiB stream: %s bytes in %s s, peak RSS %s MiB\n' "$gib" "$bytes" "$secs" "$((kib / 1024))"
  r=$( { /usr/bin/time -f '%e %M' "$BIN" restore latest --name mem > /dev/null; } 2>&1 | tail -1)
  read -r secs kib <<<"$r"
  printf '%s GiB restore: %s s, peak RSS %s MiB\n' "$gib" "$secs" "$((kib / 1024))"
done
