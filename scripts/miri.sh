#!/usr/bin/env bash
# Runs the tests of the code with `unsafe` blocks under Miri, which stops at
# the first undefined behaviour (an out-of-bounds or misaligned access, a
# reference that outlives or aliases what it points to, uninitialized
# bytes read as a value): the C API (raw pointers from C, the opaque
# `tg_model` and `tg_learner` storage) and the runtime's AVX2 kernel. The
# build enables AVX2 and FMA, so that the vector kernels run (Miri
# interprets neither CPUID nor inline assembly) and the runtime need not
# ask the CPU.
#
# Usage: scripts/miri.sh [all | trainer]
#   no argument: what CI runs (about 2.5 minutes on 2 cores from an empty
#   build directory, under 1 warm);
#   all: every test of the runtime and the C API (hours);
#   trainer: the tests of the trainer's int8 fast path (its AVX2 tiles,
#   requantization and input quantization; about 10 minutes to build,
#   7 to run; CI leaves it out for that build time).
#
# Needs the nightly toolchain; adds its miri and rust-src components.
# Property tests run 4 cases (Miri is about a thousand times slower than
# a native test), and reach the file system for their regressions file.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add --toolchain nightly miri rust-src
export RUSTFLAGS="-C target-feature=+avx2,+fma"
export MIRIFLAGS="-Zmiri-disable-isolation"
export PROPTEST_CASES="${PROPTEST_CASES_MIRI:-4}"

if [ "${1:-}" = trainer ]; then
  cargo +nightly miri test -p tinygen --lib -- fast_qnetwork::
elif [ "${1:-}" = all ]; then
  cargo +nightly miri test -p tinygen-capi --lib
  cargo +nightly miri test -p tinygen-runtime --features alloc --lib
else
  # The learner's byte-for-byte comparison takes 2 minutes here, more than
  # the other tests together, and reaches no pointer they do not.
  cargo +nightly miri test -p tinygen-capi --lib -- \
    --skip the_c_learner_learns_the_runtimes_file_byte_for_byte
  cargo +nightly miri test -p tinygen-runtime --features alloc --lib -- quant::kernel::avx2
fi
