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
# One full build per run: incremental caches would only add gigabytes of disk (and time)
# to a build that starts from nothing on a CI machine.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Prometheus and promtool (tests/prometheus.rs) and headless Chromium
# (tests/status_page.rs) come from Debian packages.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$@"
}
# The kafka plugins build librdkafka from source: a C compiler, make, pkg-config and
# OpenSSL's headers.
if ! command -v cc >/dev/null || ! command -v make >/dev/null \
    || ! command -v pkg-config >/dev/null || ! pkg-config --exists openssl 2>/dev/null; then
  apt_install build-essential pkg-config libssl-dev
fi
# The ruby filter embeds CRuby: Ruby's headers and libruby (ruby-dev), and libclang for
# the bindings generated at build time.
have_ruby_dev() {
  command -v ruby >/dev/null \
    && ruby -e 'exit(File.exist?(File.join(RbConfig::CONFIG["rubyhdrdir"], "ruby.h")))' 2>/dev/null
}
have_libclang() {
  compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null \
    || compgen -G '/usr/lib/*/libclang*.so*' >/dev/null
}
if ! have_ruby_dev || ! have_libclang; then
  apt_install ruby-dev libclang-dev
fi
command -v promtool >/dev/null || apt_install prometheus
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || apt_install chromium

# A Kafka-protocol broker for tests/kafka.rs: tansu 0.6.0 with its sqlite storage engine,
# built once per machine (about 11 minutes on 2 cores) into a local root and reused.
tansu_root="$HOME/.cache/sluice-test-tools/tansu-0.6.0"
if [ ! -x "$tansu_root/bin/tansu" ]; then
  cargo install tansu --version 0.6.0 --features libsql --locked --root "$tansu_root"
fi
export SLUICE_TANSU="$tansu_root/bin/tansu"

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo build --release
cargo test --all-targets
