#!/usr/bin/env bash
# The GPU check: one prepared run (< 8 minutes on one H100/H200-class GPU) that writes
# results/bench/gpu.csv and gpu.md: the Gatys bands on CUDA against their CPU references, 1000 Gatys
# iterations at 512 px (fp32, tf32, bf16; eager and torch.compile), the fast network's forward at
# 256/512/1024 px and training images/s at 256 px, E7 in full, and an estimate of the paper profile.
#   benchmarks/gpu_check.sh             on the GPU (hard limit: GPU_CHECK_TIMEOUT seconds, default 480)
#   benchmarks/gpu_check.sh --dry-run   on the CPU, tiny sizes: plumbing only (tests/test_gpu_check.py)
# Other arguments go to benchmarks/gpu_check.py (--out DIR, --only SECTION...).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}
if [ -z "${NSTBENCH_ASSETS:-}" ] && [ -f ../shared/assets/SOURCES.md ]; then
  export NSTBENCH_ASSETS=$(cd ../shared/assets && pwd)
fi
export NSTBENCH_OFFLINE=${NSTBENCH_OFFLINE:-1}
# a run that does not stop on TERM within 20 s (inside a long compile, say) is killed: the limit holds
exec timeout --signal=TERM --kill-after=20 "${GPU_CHECK_TIMEOUT:-480}" "$PY" benchmarks/gpu_check.py "$@"
