#!/usr/bin/env bash
# What a dump check (`snapshot --verify`) costs: the same dump snapshotted into a warm
# repository (every chunk already stored, so larder is at its fastest and the check weighs
# most) with and without `--verify`, runs alternating, medians of wall time and peak RSS.
#
#   benches/verify-cost.sh [--runs N] DIR     # DIR holds A.sql (plain) and A.dump (-Fc -Z0),
#                                              # as benches/dump-pair.sh writes them
#
# Prints one table; needs a release build (built here) and GNU time.
set -euo pipefail

runs=5
if [[ ${1:-} == --runs ]]; then
    runs=$2
    shift 2
fi
dir=${1:?usage: benches/verify-cost.sh [--runs N] DIR}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
larder=$PWD/target/release/larder
work=$(mktemp -d /var/tmp/larder-verify-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT
export LARDER_PASSWORD=bench LARDER_CACHE_DIR=$work/cache LARDER_REPOSITORY=$work/repo
"$larder" init >/dev/null 2>&1

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# One snapshot of $1 with extra flags $2..; prints "seconds max_rss_kib".
one() {
    local file=$1
    shift
    /usr/bin/time -f '%e %M' -o "$work/t" "$larder" -q snapshot --name bench --stdin "$@" \
        <"$file" >/dev/null 2>"$work/err" || {
        cat "$work/err" >&2
        exit 1
    }
    cat "$work/t"
}

printf '%-8s %-15s %12s %12s %10s %12s\n' file verify "none (s)" "verify (s)" ratio "RSS MiB v/n"
for pair in "A.sql pg_dump" "A.dump pg_dump_custom"; do
    read -r name kind <<<"$pair"
    file=$dir/$name
    [[ -f $file ]] || continue
    one "$file" >/dev/null # warm: every chunk stored
    : >"$work/none"
    : >"$work/verify"
    for _ in $(seq "$runs"); do
        one "$file" >>"$work/none"
        one "$file" --verify "$kind" >>"$work/verify"
    done
    n=$(cut -d' ' -f1 "$work/none" | median)
    v=$(cut -d' ' -f1 "$work/verify" | median)
    rn=$(cut -d' ' -f2 "$work/none" | median)
    rv=$(cut -d' ' -f2 "$work/verify" | median)
    size=$(stat -c %s "$file")
    printf '%-8s %-15s %12s %12s %10s %12s   (%d MB; %d runs each)\n' "$name" "$kind" "$n" "$v" \
        "$(awk -v a="$v" -v b="$n" 'BEGIN {printf "%.3f", a/b}')" \
        "$((rv / 1024))/$((rn / 1024))" "$((size / 1000000))" "$runs"
done
