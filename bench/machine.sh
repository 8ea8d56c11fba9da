# Sourced by the bench scripts: print_machine FRUGAL prints the CPU and the GEMM kernels frugal
# uses for each dtype on it (from `frugal doctor --json`), so every table names where it was measured.
print_machine() {
  "$1" doctor --json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print("machine: %s (%s), %d threads; GEMM f32 %s (chosen by %s), bf16 %s, f16 %s" % (
    d["cpu"]["model"], " ".join(d["cpu"]["flags"]), d["threads"], d["gemm"]["f32"], d["openblas"]["chosen_by"],
    d["gemm"]["bf16"], d["gemm"]["f16"]))
for w in d["warnings"]:
    print("machine warning: " + w)'
}
