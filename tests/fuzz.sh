#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz) for a bounded time, starting from its
# corpus in tests/fuzz/corpus. Installs nightly and cargo-fuzz if missing.
# New inputs go to a temporary folder; `cargo fuzz cmin` folds them into
# the corpus when a longer local run found some worth keeping.
#
#   bash tests/fuzz.sh [seconds per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

fuzz=(cargo +nightly fuzz)
found=$(mktemp -d)
trap 'rm -rf "$found"' EXIT
"${fuzz[@]}" build --fuzz-dir tests/fuzz
for target in $("${fuzz[@]}" list --fuzz-dir tests/fuzz); do
  echo "fuzzing $target for ${seconds} s"
  mkdir -p "$found/$target"
  "${fuzz[@]}" run --fuzz-dir tests/fuzz "$target" "$found/$target" "tests/fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)|panicked|ERROR' || true
  # grep hides the progress lines; the run's own status decides.
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "fuzz target $target failed" >&2; exit 1; }
done
