#!/usr/bin/env bash
# Create (or reuse) a cached venv with vLLM 0.33.0 whose CLI parser builds on a CPU-only machine.
#
# Usage: scripts/vllm-venv.sh [--full]     prints the venv's python path on stdout; logs go to stderr.
#   LLMOP_VLLM_VENV      venv directory (default ~/.cache/llmop/vllm-0.33.0-venv, outside the repo)
#   LLMOP_VLLM_PYTHON    interpreter to build it with (default python3.11, else python3; vLLM needs 3.11-3.14)
#   LLMOP_VLLM_FULL=1    same as --full: `pip install vllm==0.33.0` with every dependency (~4.3 GB download,
#                        ~9.4 GB on disk, ~7.5 min on 2 cores) instead of the minimal set below.
#
# The minimal set (~3.4 GB download, ~5.7 GB on disk) is vllm --no-deps plus torch and the CUDA runtime
# libraries torch's shared objects link against (it cannot import without them, GPU or not), plus the
# pure-Python/small packages that vLLM's parser, config classes and vllm.envs import. It leaves out triton,
# flashinfer, cutlass-dsl, tilelang, opencv, torchvision/torchaudio, etc. (imported lazily or guarded).
# Pins are the versions pip resolved for vllm==0.33.0 on 2026-11-26. A marker file records the package
# list; a warm run with a matching marker only prints the path.
set -euo pipefail

VLLM_VERSION=0.33.0
VENV="${LLMOP_VLLM_VENV:-$HOME/.cache/llmop/vllm-${VLLM_VERSION}-venv}"
MARKER="$VENV/.llmop-vllm-complete"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FULL="${LLMOP_VLLM_FULL:-0}"
[[ "${1:-}" == "--full" ]] && FULL=1

# torch 2.14.0 + the CUDA 13 libraries its .so files have as DT_NEEDED (libcudart, cublas, cudnn, nccl, ...).
TORCH_PINS=(
  torch==2.14.0
  nvidia-cublas==13.1.1.3 nvidia-cuda-cupti==13.0.85 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96
  nvidia-cudnn-cu13==9.24.0.43 nvidia-cufft==12.0.0.61 nvidia-cufile==1.15.1.6 nvidia-curand==10.4.0.35
  nvidia-cusolver==12.0.4.66 nvidia-cusparse==12.6.3.3 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7
  nvidia-nvjitlink==13.5.37 nvidia-nvshmem-cu13==3.4.5 nvidia-nvtx==13.0.85
  filelock==4.3.1 fsspec==2026.9.0 Jinja2==3.1.6 MarkupSafe==3.0.4 mpmath==1.3.0 networkx==3.6.1 sympy==1.14.0
  typing_extensions==4.16.0
)
# What `import vllm...` needs on the parser / config / envs path (found by importing until nothing was missing).
VLLM_PINS=(
  "vllm==${VLLM_VERSION}"
  aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 annotated-doc==0.0.7 annotated-types==0.8.0
  anyio==4.16.0 apache-tvm-ffi==0.1.11 attrs==26.1.0 cachetools==8.0.2 cbor2==6.3.0 certifi==2026.10.19.post1
  charset-normalizer==3.5.3 cloudpickle==3.1.3 compressed-tensors==0.17.0 einops==0.8.2 fastapi==0.136.3
  frozenlist==1.8.0 h11==0.16.0 hf-xet==1.8.0 httpcore2==2.16.2 httpx2==2.16.2 huggingface_hub==2.4.0
  idna==3.20 llguidance==1.7.6 loguru==0.7.3 msgspec==0.22.0 multidict==7.2.1 numpy==2.3.5 openai==3.57.0
  oss-harmony==0.0.11 packaging==26.4 partial-json-parser==0.2.1.1.post7 pillow==13.0.0
  prometheus_client==0.26.0 propcache==0.5.4 psutil==7.2.2 py-cpuinfo==9.0.0 pybase64==1.5.1
  pydantic==2.14.4 pydantic_core==2.50.5 PyYAML==6.0.4 pyzmq==27.3.0 regex==2026.11.19 requests==2.34.2
  safetensors==0.8.0 sniffio==1.3.1 starlette==1.10.0 tokenizers==0.23.3 tqdm==4.70.1 transformers==5.20.2
  truststore==0.10.5 typing-inspection==0.4.5 urllib3==2.8.0 uvloop==0.23.0 xgrammar==0.2.8 yarl==1.25.1
)

log() { printf 'vllm-venv: %s\n' "$*" >&2; }

if [[ "$FULL" == 1 ]]; then
  SPEC="full vllm==${VLLM_VERSION}"
else
  SPEC="minimal ${TORCH_PINS[*]} ${VLLM_PINS[*]}"
fi
WANT="$(printf '%s\n' "$SPEC" | sha256sum | cut -c1-16)"

if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$WANT" && -x "$VENV/bin/python" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
# Another process may have finished it while we waited for the lock.
if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$WANT" && -x "$VENV/bin/python" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi

PY="${LLMOP_VLLM_PYTHON:-}"
if [[ -z "$PY" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi
"$PY" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 15) else 1)' \
  || { log "vLLM ${VLLM_VERSION} needs Python 3.11-3.14; $PY is $("$PY" -V 2>&1)"; exit 1; }

start=$(date +%s)
log "creating $VENV ($([[ "$FULL" == 1 ]] && echo full || echo minimal) install) with $("$PY" -V 2>&1)"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: -q)
if [[ "$FULL" == 1 ]]; then
  "${PIP[@]}" "vllm==${VLLM_VERSION}" >&2
else
  "${PIP[@]}" --no-deps "${TORCH_PINS[@]}" "${VLLM_PINS[@]}" >&2
fi

log "smoke test: building vLLM's parser under VLLM_TARGET_DEVICE=cpu"
echo '[{"name": "smoke", "args": ["Qwen/Qwen3-0.6B", "--max-model-len", "4096"], "env": {}}]' \
  | VLLM_TARGET_DEVICE=cpu "$VENV/bin/python" "$HERE/vllm_argcheck.py" >/dev/null \
  || { log "smoke test failed; leaving $VENV without a marker"; exit 1; }

echo "$WANT" >"$MARKER"
log "done in $(($(date +%s) - start)) s; $(du -sh "$VENV" | cut -f1) on disk"
echo "$VENV/bin/python"
