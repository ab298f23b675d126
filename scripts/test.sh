#!/usr/bin/env bash
# Runs every check and test Sluice has. Installs what the tests need first: Python test
# servers and clients go into a local venv (.venv), reused while tests/requirements.txt
# is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
export SLUICE_TEST_VENV="$PWD/.venv"

# The kafka plugins build librdkafka from source (C compiler, make) against OpenSSL.
if ! command -v cc >/dev/null || ! command -v make >/dev/null \
    || ! pkg-config --exists openssl 2>/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq build-essential pkg-config libssl-dev
fi

# A Kafka-protocol broker for tests/kafka.rs: tansu, built once per machine (about 11
# minutes on 2 cores) into a local root, and skipped when it is already there.
tansu_root="$HOME/.cache/sluice-test-tools/tansu-0.6.0"
if [ ! -x "$tansu_root/bin/tansu" ]; then
  cargo install tansu --version 0.6.0 --features libsql --locked --root "$tansu_root"
fi
export SLUICE_TANSU="$tansu_root/bin/tansu"

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo build --release
cargo test --all-targets
