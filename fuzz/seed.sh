#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from committed files only (nothing binary is
# committed under fuzz/): the example models and small models of every kind
# written by fuzz/seedgen with the runtime's own encoders, the bundled data
# (and small slices of it, in every format a reader takes), the trainer's
# test fixtures. Existing corpus files (what earlier runs found) are kept.
#
# Usage: fuzz/seed.sh [TARGET...]   (default: every target)
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
corpus="$fuzz/corpus"
target_dir="${TINYGEN_FUZZ_TARGET_DIR:-$fuzz/target}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(model csv npy npz idx mat ts tflite)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# gunzip -c that does not fail when `head` stops reading early (pipefail).
unzip_to_pipe() { gunzip -c "$1" 2>/dev/null || true; }

seed_model() {
  local out="$corpus/model"
  mkdir -p "$out"
  # Control byte 0: keep the header's kind, fix up length and CRC.
  for f in "$root"/models/*/model.tgm; do
    { printf '\0'; cat "$f"; } >"$out/$(basename "$(dirname "$f")").seed"
  done
  # Small models of every kind, from the runtime's encoders (a plain
  # release build: no sanitizer flags, in its own target directory).
  cargo run --quiet --release --manifest-path "$fuzz/seedgen/Cargo.toml" \
    --target-dir "$target_dir/seedgen" -- "$out"
}

seed_csv() {
  local out="$corpus/csv"
  mkdir -p "$out"
  cp "$root"/data/*.csv.gz "$out/"
  for f in "$root"/models/*/*.csv; do
    head -n 20 "$f" >"$out/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  for f in "$root"/data/*.csv.gz; do
    name="$(basename "$f" .csv.gz)"
    unzip_to_pipe "$f" | head -n 20 >"$out/$name-head.csv"
    gzip -c -n "$out/$name-head.csv" >"$out/$name-head.csv.gz"
    tr ',' '\t' <"$out/$name-head.csv" >"$out/$name-head-tabs.csv"
    tr ',' ';' <"$out/$name-head.csv" >"$out/$name-head-semicolons.csv"
  done
  head -n 20 "$root/data/cardio_splits.txt" >"$out/cardio_splits-head.txt"
}

# NPY and IDX files written from the bundled data with Python's standard
# library (no numpy needed): every dtype, byte order and layout the readers take.
seed_npy_idx() {
  mkdir -p "$corpus/npy" "$corpus/idx"
  unzip_to_pipe "$root/data/digits.csv.gz" | head -n 31 >"$tmp/digits.csv"
  head -n 8 "$root/models/cardio-gmm/inputs.csv" >"$tmp/cardio.csv"
  python3 - "$tmp" "$corpus/npy" "$corpus/idx" <<'PY'
import csv, gzip, struct, sys
tmp, npy_dir, idx_dir = sys.argv[1:]

def rows(path):
    out = []
    for r in csv.reader(open(path)):
        try:
            out.append([float(v) for v in r])
        except ValueError:
            pass  # a header
    return out

def npy(name, descr, fmt, shape, flat, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False",
        ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else ""))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    data = b"".join(struct.pack(fmt, v) for v in flat)
    with open(f"{npy_dir}/{name}.npy", "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)

cardio = rows(f"{tmp}/cardio.csv")
n, d = len(cardio), len(cardio[0])
flat = [v for r in cardio for v in r]
fortran = [cardio[i][j] for j in range(d) for i in range(n)]
npy("cardio-f8", "<f8", "<d", (n, d), flat)
npy("cardio-f4", "<f4", "<f", (n, d), flat)
npy("cardio-f8-big-fortran", ">f8", ">d", (n, d), fortran, fortran=True)
npy("cardio-column", "<f8", "<d", (n,), [r[0] for r in cardio])
digits = rows(f"{tmp}/digits.csv")[:10]
pixels = [int(v) for r in digits for v in r[:64]]
labels = [int(r[64]) for r in digits]
npy("digits-u1", "|u1", "B", (len(digits), 64), pixels)
npy("digits-i2", "<i2", "<h", (len(digits), 64), pixels)
npy("digits-i4-big", ">i4", ">i", (len(digits), 64), pixels)
npy("digits-i8", "<i8", "<q", (len(digits), 64), pixels)
npy("labels-u4", "<u4", "<I", (len(labels),), labels)

def idx(name, dims, data):
    raw = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", n) for n in dims) + bytes(data)
    open(f"{idx_dir}/{name}", "wb").write(raw)
    open(f"{idx_dir}/{name}.gz", "wb").write(gzip.compress(raw, mtime=0))

idx("digits-idx3-ubyte", (len(digits), 8, 8), pixels)
idx("digits-idx1-ubyte", (len(labels),), labels)
idx("digits-idx2-ubyte", (len(digits), 64), pixels)
PY
}

seed_mat() {
  mkdir -p "$corpus/mat"
  cp "$root"/trainer/tests/fixtures/*.mat "$corpus/mat/"
}

seed_npz() {
  mkdir -p "$corpus/npz"
  cp "$root"/trainer/tests/fixtures/*.npz "$corpus/npz/"
}

seed_ts() {
  local out="$corpus/ts"
  mkdir -p "$out"
  for f in "$root"/data/basicmotions/*.ts.gz; do
    name="$(basename "$f" .ts.gz)"
    # The header and the first three series (100 steps of 6 channels each).
    unzip_to_pipe "$f" | awk '/^@data/ {print; n = 1; next} n > 0 && n <= 3 {print; n++; next} n == 0 {print}' \
      >"$out/$name-head.ts"
    gzip -c -n "$out/$name-head.ts" >"$out/$name-head.ts.gz"
    # Shorter series: the first 5 values of each channel.
    unzip_to_pipe "$f" | awk -F: 'BEGIN {OFS = ":"} /^@data/ {print; d = 1; next}
      d && c < 4 {for (i = 1; i < NF; i++) {split($i, v, ","); $i = v[1] "," v[2] "," v[3] "," v[4] "," v[5]} print; c++; next}
      !d {print}' >"$out/$name-short.ts"
  done
}

seed_tflite() {
  mkdir -p "$corpus/tflite"
  cp "$root"/tests/fixtures/tflite/*.tflite "$corpus/tflite/"
}

for t in "${targets[@]}"; do
  case "$t" in
    model) seed_model ;;
    csv) seed_csv ;;
    npy | idx) seed_npy_idx ;;
    npz) seed_npz ;;
    mat) seed_mat ;;
    ts) seed_ts ;;
    tflite) seed_tflite ;;
    *) echo "seed.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
