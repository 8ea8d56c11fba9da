#!/usr/bin/env bash
# The numeric tests again (the Release build's CTest suite) with another OpenBLAS kernel forced than
# the one the first pass ran: Haswell (AVX2) where the machine runs an AVX-512 kernel, the CPU's
# AVX-512 kernel where it runs Haswell, Prescott (SSE) on a CPU without AVX-512. Kernels add in other
# orders and use FMA differently, so a tolerance tuned to one kernel fails here, not on a user's
# machine (docs/TOLERANCES.md). Run after scripts/test.sh (it needs build/).
set -euo pipefail
cd "$(dirname "$0")/.."
kernels() {  # prints "RUNNING BEST": the kernel frugal runs now and the best one for this CPU
  "$@" build/frugal doctor --json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)["openblas"]
print(d["kernel"], d["best_for_this_cpu"])'
}
running=$(kernels env)  # (an assignment, so that a failing doctor stops the script)
read -r first best <<< "$running"
avx512="SkylakeX Cooperlake SapphireRapids"
if [[ " $avx512 " == *" $first "* ]]; then other=Haswell
elif [[ " $avx512 " == *" $best "* ]]; then other=$best
else other=Prescott
fi
running=$(kernels env OPENBLAS_CORETYPE="$other")
read -r forced _ <<< "$running"
if [ "$forced" != "$other" ]; then
  echo "cannot force OpenBLAS's $other kernel (frugal runs $forced with OPENBLAS_CORETYPE=$other)" >&2
  exit 1
fi
echo "== numeric tests again with OpenBLAS's $other kernel forced (the first pass ran $first)"
(cd build && OPENBLAS_CORETYPE="$other" ctest --output-on-failure -j 2 "$@")
