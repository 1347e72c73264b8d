#!/usr/bin/env bash
# The GPU check as one call of the device tool (README "The GPU check"): a bare machine that gets the
# working tree and the carried folder .device/ only (no ../shared, no .venv, no network; its image's
# python3 holds torch, torchvision, numpy, scipy, pandas, matplotlib, pillow, h5py, but not lpips,
# submitit or streamlit), 15 minutes of device time in all, at most 10 a command.
#
#   benchmarks/device_call.sh prepare          here: .device/assets (the images the checks read),
#                                              .device/wheels (WHEELS below), .device/COMMIT; prints
#                                              the size that would travel (limit 64 MiB)
#   benchmarks/device_call.sh run              there, as the device command (OUT set by the tool):
#                                              the GPU check (at most GPU_CHECK_TIMEOUT s), then the
#                                              paper check with what is left of DEVICE_BUDGET s;
#                                              gpu.csv, gpu.md, paper_check.csv, paper_check.md and
#                                              device_call.log written straight into $OUT
#   benchmarks/device_call.sh run --dry-run    the same on the CPU at tiny sizes (the rehearsal,
#                                              tests/test_device_call.py)
# GPU_CHECK_ONLY / PAPER_CHECK_ONLY: these sections / experiments only (--only of each), for a second
# call after one that ran out of time, and for the rehearsal's test.
set -uo pipefail
cd "$(dirname "$0")/.."

# What the checks read from the asset folder (nstbench/data/assets.json names): gpu_check.py's
# Gatys inputs (octopus, hockney) and training (mosaic, coco100); the Gatys bands of tests/bands.json
# (chelsea, starry_night, hust_cat, hust_picasso, octopus, hockney, tubingen, starry_night_gatys);
# each experiment's CONTENT and STYLE (the same in every profile: E5 adds golden_gate); the training
# experiments' coco100. The rehearsal fails if one is missing and if one is never read.
IMAGES="chelsea starry_night hust_cat hust_picasso octopus hockney tubingen starry_night_gatys mosaic golden_gate"
DATASETS="coco100"
# Wheels for what the device image lacks, NAME==VERSION for python 3.12 manylinux x86_64. None: the
# checks import nothing the image lacks (lpips is imported only inside metrics.lpips_status, which
# says it is missing; the experiments then leave lpips_content empty with that note).
WHEELS=""
LIMIT_BYTES=$((64 * 1024 * 1024))

prepare() {
  local py src
  py=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}
  src=${NSTBENCH_ASSETS:-../shared/assets}
  [ -d "$src" ] || { echo "no asset folder at $src (set NSTBENCH_ASSETS)" >&2; return 1; }
  rm -rf .device && mkdir -p .device/assets .device/wheels || return 1
  # copy by the registry's file names and check each against its sha256 there: a wrong image
  # would only show as odd numbers on the GPU
  "$py" - "$src" .device/assets "$IMAGES" "$DATASETS" <<'EOF' || return 1
import hashlib, json, shutil, sys
from pathlib import Path

src, dst, images, datasets = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
reg = json.loads(Path("nstbench/data/assets.json").read_text())
files = [(reg["images"][n]["file"], reg["images"][n]["sha256"]) for n in images]
for d in datasets:
    files += [(f"{reg['datasets'][d]['folder']}/{f}", sha) for f, sha in reg["datasets"][d]["files"].items()]
for rel, sha in files:
    got = hashlib.sha256((src / rel).read_bytes()).hexdigest()
    if got != sha:
        sys.exit(f"{src / rel}: sha256 {got[:16]}... is not the registry's {sha[:16]}...")
    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / rel, dst / rel)
print(f"copied {len(files)} asset files ({len(images)} images, datasets {' '.join(datasets)}) to {dst}")
EOF
  if [ -n "$WHEELS" ]; then
    # the device README's line: no dependencies fetched, so WHEELS names each missing one itself
    # shellcheck disable=SC2086
    "$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .device/wheels $WHEELS || return 1
  fi
  # the device may get no .git: the commit the files came from, for its log
  { git rev-parse HEAD && git status --porcelain --untracked-files=no | sed 's/^/dirty: /'; } >.device/COMMIT 2>/dev/null
  # what travels: tracked and untracked-not-ignored files, plus the carried .device
  local tree carried
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
  carried=$(du -sb .device | cut -f1)
  echo "travels: working tree $tree bytes + .device $carried bytes = $((tree + carried)) bytes" \
    "($(((tree + carried) / 1048576)) MiB of the 64 MiB limit)"
  [ $((tree + carried)) -lt $LIMIT_BYTES ] || { echo "over the 64 MiB limit" >&2; return 1; }
}

run() {
  local dry="" start=$SECONDS gpu_rc paper_rc left site=""
  [ "${1:-}" = "--dry-run" ] && dry=--dry-run
  : "${OUT:?OUT must name the folder whose files come back}"
  [ -d .device/assets ] || { echo "no .device/assets: run 'benchmarks/device_call.sh prepare' here and carry .device" >&2; return 1; }
  # everything printed also goes to $OUT, which comes back even when the tool's limit kills the command
  exec > >(tee -a "$OUT/device_call.log") 2>&1
  local budget=${DEVICE_BUDGET:-540} gpu_limit=${GPU_CHECK_TIMEOUT:-360}
  if compgen -G ".device/wheels/*.whl" >/dev/null; then
    site=$(mktemp -d)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      .device/wheels/*.whl || return 1
  fi
  export PYTHONPATH="$PWD${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}" NSTBENCH_ASSETS="$PWD/.device/assets"
  export NSTBENCH_OFFLINE=1 PYTHONUNBUFFERED=1
  echo "== device call $(date -u +%FT%TZ) ${dry:-(full)}; budget $budget s, GPU check at most $gpu_limit s"
  echo "commit (at prepare): $(tr '\n' ' ' <.device/COMMIT 2>/dev/null)"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  timeout 60 python3 - <<'EOF'
import sys, torch
from nstbench.methods.metrics import lpips_status
print(f"python {sys.version.split()[0]} at {sys.executable}; torch {torch.__version__}, cuda {torch.version.cuda}, "
      f"available {torch.cuda.is_available()}" + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
print(f"LPIPS: {'available' if lpips_status()[0] else 'not available, lpips_content stays empty'}: {lpips_status()[1]}")
EOF
  echo "== GPU check"
  # shellcheck disable=SC2086
  PY=python3 GPU_CHECK_TIMEOUT=$gpu_limit bash benchmarks/gpu_check.sh $dry --out "$OUT" \
    ${GPU_CHECK_ONLY:+--only $GPU_CHECK_ONLY}
  gpu_rc=$?
  left=$((budget - (SECONDS - start)))
  echo "== GPU check exit $gpu_rc after $((SECONDS - start)) s; paper check with the $left s left"
  # the paper check stops its experiments itself (--budget); the timeout is the backstop
  timeout --kill-after=10 $((left > 25 ? left - 5 : 20)) \
    python3 benchmarks/paper_check.py $dry --device cuda --budget $((left > 45 ? left - 25 : 20)) --out "$OUT" \
    ${PAPER_CHECK_ONLY:+--only $PAPER_CHECK_ONLY}
  paper_rc=$?
  echo "== paper check exit $paper_rc; $((SECONDS - start)) s in all; in \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
  [ "$gpu_rc" -ne 0 ] && return "$gpu_rc"
  return "$paper_rc"
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift && run "$@" ;;
  *) echo "usage: benchmarks/device_call.sh prepare | run [--dry-run]" >&2 && exit 2 ;;
esac
