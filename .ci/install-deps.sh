#!/usr/bin/env bash
# Installs what `.ci/run` needs on a clean Debian machine that has only a rustup toolchain:
# rustfmt, clippy, cargo-fuzz, a C/C++ compiler (rusqlite and zstd build C; libFuzzer, built by
# libfuzzer-sys, is C++), and restic with the time zone data it reads (tests/retention.rs checks
# larder's retention policy against `restic forget`). Idempotent and quiet when everything is
# already there.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! have rustup || ! have cargo; then
    echo "install-deps: rustup and cargo are required (https://rustup.rs)" >&2
    exit 1
fi

# rustup prints "component ... is up to date" when nothing is to do; keep that quiet.
installed=$(rustup component list --installed)
for c in rustfmt clippy; do
    if ! grep -q "^$c" <<<"$installed"; then
        echo "install-deps: rustup component add $c"
        rustup component add "$c"
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "install-deps: cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi

missing=()
have cc || have gcc || missing+=(gcc)
have c++ || have g++ || missing+=(g++)
have restic || missing+=(restic)
[[ -e /usr/share/zoneinfo/Europe/Berlin ]] || missing+=(tzdata)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && have apt-get; then
        echo "install-deps: apt-get install ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" make >/dev/null
    else
        echo "install-deps: missing ${missing[*]} (install them, e.g. with apt-get)" >&2
        exit 1
    fi
fi
