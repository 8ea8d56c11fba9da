#!/usr/bin/env python3
"""The installed C++ package, as an application outside frugal's tree uses it: `cmake --install`
into a fresh prefix, examples/ configured with find_package(frugal) against that prefix alone, built,
and run: it fine-tunes a tiny Llama with LoRA through frugal::train with a step callback, plans the
same run with frugal::plan, and has a typo refused with frugal::Error.

  test_installed_example.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import tempfile


def run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def main():
    build, source = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "prefix")
        run(["cmake", "--install", build, "--prefix", prefix])
        for path in ["include/frugal/frugal.h", "include/frugal/error.h"]:
            assert os.path.isfile(os.path.join(prefix, path)), path
        example_build = os.path.join(tmp, "example")
        run(["cmake", "-S", os.path.join(source, "examples"), "-B", example_build, f"-DCMAKE_PREFIX_PATH={prefix}",
             "-DCMAKE_BUILD_TYPE=Release"])
        run(["cmake", "--build", example_build])
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = run([os.path.join(example_build, "finetune_tiny"), "6"], env=env).stdout.splitlines()
    steps = [line for line in out if line.startswith("step ")]
    assert len(steps) == 6, out
    result = json.loads(next(line for line in out if line.startswith("{")))
    assert result["steps_seen"] == 6 and len(result["losses"]) == 6, result
    assert result["losses"][-1] < result["losses"][0], result  # it learnt
    # LoRA r4 on PEFT's default targets, q_proj (32 -> 32) and v_proj (32 -> 16: 2 kv heads of 8), 2 layers
    assert result["trainable_params"] == 2 * 4 * ((32 + 32) + (32 + 16)), result
    assert result["planned_total"] == result["measured_total"], result  # the ledger equals the plan, to the byte
    assert out[-1].startswith("frugal::Error: spec: unknown key 'lora-rnak'"), out[-1]
    print("installed package: built in a clean prefix, fine-tuned 6 steps, plan = measured "
          f"({result['planned_total']} bytes), errors as frugal::Error")


if __name__ == "__main__":
    main()
