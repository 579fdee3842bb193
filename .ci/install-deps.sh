#!/usr/bin/env bash
# Installs what `.ci/run` needs on a clean Debian machine that has only a rustup toolchain:
# rustfmt, clippy, cargo-fuzz, a C/C++ compiler (rusqlite and zstd build C; libFuzzer, built by
# libfuzzer-sys, is C++), restic with the time zone data it reads (tests/retention.rs checks
# larder's retention policy against `restic forget`), and moto's S3 server (tests/s3.rs runs the
# object-store backend against it on 127.0.0.1; 5.1 or later honours `If-None-Match: *` on
# PutObject and CompleteMultipartUpload), Azurite's blob service with Node.js (tests/azure.rs
# runs the same backend on Azure Blob Storage's emulator; it honours `If-None-Match: *` on Put
# Blob), and PostgreSQL's server and client programs (tests/dump_check.rs checks real pg_dump
# output from a throwaway cluster it starts itself), systemd-analyze and PyYAML (tests/deploy.rs
# verifies the systemd units in deploy/ and parses the Kubernetes CronJob).
# Idempotent and quiet when everything is already there.
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
have python3 || missing+=(python3 python3-pip)
have node || missing+=(nodejs)
have npm || missing+=(npm)
[[ -e /usr/share/zoneinfo/Europe/Berlin ]] || missing+=(tzdata)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
have systemd-analyze || missing+=(systemd)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
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

# moto >= 5.1 with its server extras (Flask). pip refuses a Debian-managed python3 unless told
# to (PEP 668); the machine image's own python3 takes a plain install.
moto_ok() {
    python3 - <<'PY' >/dev/null 2>&1
import moto, moto.server, flask_cors
major, minor = (int(x) for x in moto.__version__.split(".")[:2])
raise SystemExit(0 if (major, minor) >= (5, 1) else 1)
PY
}
if ! moto_ok; then
    echo "install-deps: pip install 'moto[server]>=5.1,<6'"
    pip=(python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6')
    "${pip[@]}" 2>/dev/null || "${pip[@]}" --break-system-packages
    moto_ok || { echo "install-deps: moto still not importable after pip install" >&2; exit 1; }
fi

# PyYAML for a python3 that is not Debian's (python3-yaml above installs it for Debian's).
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    echo "install-deps: pip install pyyaml"
    pip=(python3 -m pip install --quiet --disable-pip-version-check pyyaml)
    "${pip[@]}" 2>/dev/null || "${pip[@]}" --break-system-packages
    python3 -c 'import yaml' || { echo "install-deps: PyYAML still not importable after pip install" >&2; exit 1; }
fi

# Azurite's blob service (`azurite-blob`), from the npm registry.
if ! have azurite-blob; then
    echo "install-deps: npm install -g azurite@3"
    npm install -g --silent --no-fund --no-audit azurite@3 >/dev/null
    have azurite-blob || { echo "install-deps: azurite-blob still not on PATH after npm install" >&2; exit 1; }
fi
