#!/usr/bin/env bash
# Every device check in one run (for a machine with a CUDA GPU; CI has none):
#   bash bench/gpu_checks.sh
# The KAN check needs Triton (CUDA builds of torch bring it; else pip install -c constraints.txt
# -e ".[triton]"); flashkan / inkan (the "bench" extra) are timed beside nnlab when installed.
set -u
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
rc=0
for s in bench/gpu_check_blocks.py bench/gpu_check_training.py bench/gpu_check_kan.py bench/gpu_profile_kan.py; do
  echo "== $s"
  python3 "$s" || rc=1
done
exit $rc
