#!/usr/bin/env bash
# Install llama-cpp-python[server] (the local-model test tier's real llama.cpp server).
#
# Idempotent:
#   1. if `$PYTHON` already imports llama_cpp.server at the pinned version -> nothing to do;
#   2. else if a compatible wheel is in the wheel cache -> install it (seconds);
#   3. else build the wheel from the sdist once (~5-10 min on 2 cores), store it in the
#      cache, and install it.  Later CI runs on the same machine hit step 2.
#
# Environment:
#   PYTHON            interpreter to install into (default: python)
#   LF_WHEEL_CACHE    wheel cache dir (default: $HOME/.cache/llm-localfirst/wheels)
#   CMAKE_ARGS        llama.cpp build flags (default: -DGGML_NATIVE=OFF, a portable build,
#                     so a shared cache never hands a runner a wheel using CPU features it
#                     lacks). The cache is keyed by these flags.
#   LLAMA_CPP_PYTHON_VERSION   override the pinned version (default below).
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
PYTHON="${PYTHON:-python}"
CACHE_ROOT="${LF_WHEEL_CACHE:-$HOME/.cache/llm-localfirst/wheels}"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"

log() { printf '[install-llama] %s\n' "$*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "PYTHON='$PYTHON' not found"; exit 1
fi

installed_ok() {
    "$PYTHON" - "$VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
import llama_cpp.server.app  # noqa: F401  (pulls in the [server] extras too)
sys.exit(0 if version("llama-cpp-python") == sys.argv[1] else 1)
PY
}

if installed_ok; then
    log "llama-cpp-python[server]==$VERSION already installed for $("$PYTHON" -c 'import sys; print(sys.executable)'); skipping"
    exit 0
fi

# Cache key: version + build flags + interpreter/platform (the wheel tag covers most of
# that, but the flags are invisible in the filename).
PY_TAG="$("$PYTHON" -c 'import sys, platform; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")')"
FLAGS_HASH="$(printf '%s' "$CMAKE_ARGS" | sha256sum | cut -c1-12)"
CACHE_DIR="$CACHE_ROOT/llama-cpp-python-$VERSION-$PY_TAG-$FLAGS_HASH"
mkdir -p "$CACHE_DIR"

pip_install_from_cache() {
    # --only-binary: never fall back to a from-source build here; the wheel must be cached.
    "$PYTHON" -m pip install --disable-pip-version-check \
        --find-links "$CACHE_DIR" --only-binary llama-cpp-python \
        "llama-cpp-python[server]==$VERSION"
}

TMP_DIRS=()
cleanup() { if ((${#TMP_DIRS[@]})); then rm -rf "${TMP_DIRS[@]}"; fi; }
trap cleanup EXIT

have_cached_wheel() {
    # Let pip decide tag compatibility: resolve from the cache only, no index, no build.
    local probe
    probe="$(mktemp -d)"; TMP_DIRS+=("$probe")
    "$PYTHON" -m pip download --disable-pip-version-check --quiet --no-deps --no-index \
        --find-links "$CACHE_DIR" --only-binary :all: -d "$probe" \
        "llama-cpp-python==$VERSION" >/dev/null 2>&1
}

build_wheel() {
    local tmp
    tmp="$(mktemp -d "$CACHE_DIR/.build.XXXXXX")"; TMP_DIRS+=("$tmp")
    log "building llama-cpp-python==$VERSION from source (CMAKE_ARGS='$CMAKE_ARGS', $(nproc) jobs); this takes several minutes"
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$PYTHON" -m pip wheel --disable-pip-version-check --no-deps --no-cache-dir \
        --no-binary llama-cpp-python -w "$tmp" "llama-cpp-python==$VERSION"
    # Publish atomically so an interrupted build never leaves a half-written wheel.
    local whl
    for whl in "$tmp"/llama_cpp_python-*.whl; do
        mv -f "$whl" "$CACHE_DIR/"
        log "cached $(basename "$whl") in $CACHE_DIR"
    done
}

{
    # Serialise concurrent jobs on one machine: one builds, the others wait and reuse.
    if command -v flock >/dev/null 2>&1; then
        flock -w 3600 9 || { log "timed out waiting for wheel-cache lock"; exit 1; }
    fi
    if have_cached_wheel; then
        log "using cached wheel from $CACHE_DIR"
    else
        build_wheel
    fi
    pip_install_from_cache
} 9>"$CACHE_DIR/.lock"

if installed_ok; then
    log "llama-cpp-python[server]==$VERSION installed"
else
    log "install finished but 'import llama_cpp.server.app' still fails:"
    "$PYTHON" -c 'import llama_cpp.server.app' || true
    exit 1
fi
