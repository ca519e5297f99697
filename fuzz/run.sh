#!/usr/bin/env bash
# Seeds and runs one fuzz target (or all of them, one after another) for
# SECONDS each, with libFuzzer's limits on so that a hang, a slow unit or a
# huge allocation fails the run like a crash does.
#
# Usage: fuzz/run.sh TARGET|all SECONDS [extra libFuzzer flags...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# The build goes to $TINYGEN_FUZZ_TARGET_DIR (default fuzz/target), never to
# the stable build's target directory: the sanitizer flags would thrash it.
# Logs go to fuzz/logs/TARGET.log, findings to fuzz/artifacts/TARGET/.
# Exits non-zero if any target crashed, timed out, ran out of memory or had
# a slow unit.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
all=(model csv npy npz idx mat ts tflite)

if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET|all SECONDS [libFuzzer flags...]  (targets: ${all[*]})" >&2
  exit 2
fi
what="$1"
seconds="$2"
shift 2
if [ "$what" = all ]; then targets=("${all[@]}"); else targets=("$what"); fi
export TINYGEN_FUZZ_TARGET_DIR="${TINYGEN_FUZZ_TARGET_DIR:-$fuzz/target}"

# Inputs at most this long: the runtime's largest example model is 413 KB;
# text readers get 16 KB, so that a gzip stream inflates to at most ~16 MB.
max_len() {
  case "$1" in
    model) echo 524288 ;;
    csv | ts) echo 16384 ;;
    *) echo 65536 ;;
  esac
}

cd "$root"
"$fuzz/seed.sh" "${targets[@]}"
mkdir -p "$fuzz/logs"
failed=()
for t in "${targets[@]}"; do
  artifacts="$fuzz/artifacts/$t"
  mkdir -p "$artifacts"
  marker="$(mktemp)"
  log="$fuzz/logs/$t.log"
  echo "=== fuzz $t for ${seconds}s (log: $log)"
  status=0
  cargo +nightly fuzz run --fuzz-dir "$fuzz" --target-dir "$TINYGEN_FUZZ_TARGET_DIR" "$t" \
    "$fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=2 -rss_limit_mb=1024 -malloc_limit_mb=512 \
    -report_slow_units=1 -max_len="$(max_len "$t")" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" >"$log" 2>&1 || status=$?
  # Slow units are only reported by libFuzzer; here they fail the run.
  new="$(find "$artifacts" -type f -newer "$marker" | sort)"
  rm -f "$marker"
  grep -E '^#[0-9]+ +DONE|^Done [0-9]+ runs|stat::number_of_executed_units|^Slowest unit' "$log" || true
  if [ "$status" -ne 0 ] || [ -n "$new" ]; then
    echo "FAILED: $t (exit status $status)" >&2
    [ -z "$new" ] || echo "$new" >&2
    grep -E 'ERROR|panicked|SUMMARY|Slowest unit' "$log" | head -20 >&2 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing passed: ${targets[*]}"
