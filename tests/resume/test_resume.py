"""Training-state checkpoints survive a crash (issue 8), run by CTest with Debian's python3.

1. Train 10 steps straight. Train the same run with --save-every 5, SIGKILL it during step 6 or 7, then
   --resume it to step 10: the losses of steps 6..10 and the final weights are bit-identical to the
   straight run's. In fp32 and in fp16 with dynamic loss scaling, with accumulation on, and with the
   8-bit AdamW (its quantised moments and block scales restored as they were), also with updates
   fused into the backward pass.
2. A newer checkpoint with a half-written file is skipped: --resume takes the previous complete one.
3. --resume refuses flags that contradict the checkpoint.
4. LoRA on a quantised base (QLoRA: --base-precision nf4 on a fresh Llama, int8 on a --model directory
   given by a relative path): the checkpoint holds no weights file; --resume (from another working
   directory) rebuilds the base and continues with the straight run's losses and adapter, bit for bit.
   A base that changed since, or is gone, is refused with one line naming it.

    python3 tests/resume/test_resume.py --frugal build/frugal
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def kill_during_step(cmd, step):
    """Starts cmd, SIGKILLs it as soon as its progress line reports `step` done; returns the exit code."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = ""
    for line in proc.stderr:
        seen += line
        if line.startswith(f"step {step}/"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        fail(f"the run was not killed mid-training (exit {proc.returncode}):\n{seen}")
    return seen


def qlora_resume(frugal, tmp):
    """Section 4 of the module docstring."""
    frugal = os.path.abspath(frugal)  # (runs from other working directories)
    llama = ["--arch", "llama", "--layers", "2", "--dim", "32", "--heads", "4", "--ctx", "16"]
    r = run([frugal, "train"] + llama + ["--data", "synthetic", "--steps", "1", "--threads", "1", "--save", "base"],
            cwd=tmp)
    if r.returncode != 0:
        fail(r.stderr)
    lora = ["--data", "synthetic", "--steps", "4", "--lr", "1e-2", "--threads", "1", "--lora-rank", "4",
            "--lora-targets", "q_proj,v_proj,down_proj"]
    for name, source in (("nf4 fresh", llama + ["--base-precision", "nf4"]),
                         ("int8 --model", ["--model", "base", "--base-precision", "int8"])):
        tag = name.replace(" ", "_").replace("-", "")
        straight = run([frugal, "train"] + source + lora + ["--save-every", "2", "--save", f"{tag}_run",
                        "--summary", f"{tag}.json", "--save-adapter", f"{tag}_adapter"], cwd=tmp)
        if straight.returncode != 0:
            fail(f"{name}: {straight.stderr}")
        step2 = os.path.join(tmp, f"{tag}_run", "checkpoints", "step-00000002")
        if sorted(os.listdir(step2)) != ["config.json", "state.safetensors", "trainer.json"]:
            fail(f"{name}: the checkpoint holds {sorted(os.listdir(step2))}")
        resumed = run([frugal, "train", "--resume", step2, "--threads", "1", "--summary", os.path.join(tmp, f"{tag}.resumed.json"),
                       "--save-adapter", os.path.join(tmp, f"{tag}_adapter_resumed")], cwd="/")
        if resumed.returncode != 0:
            fail(f"{name}: {resumed.stderr}")
        want = json.load(open(os.path.join(tmp, f"{tag}.json")))["losses"][2:]
        got = json.load(open(os.path.join(tmp, f"{tag}.resumed.json")))
        if got["first_step"] != 3 or got["losses"] != want:
            fail(f"{name}: resumed losses {got['losses']} != straight {want}")
        a = open(os.path.join(tmp, f"{tag}_adapter", "adapter_model.safetensors"), "rb").read()
        b = open(os.path.join(tmp, f"{tag}_adapter_resumed", "adapter_model.safetensors"), "rb").read()
        if a != b:
            fail(f"{name}: the resumed adapter differs from the straight run's")
        print(f"QLoRA {name}: resumed from step 2: losses and adapter bit-identical")
    # The base changes (trained again with another seed), then disappears: both refused by name.
    r = run([frugal, "train"] + llama + ["--data", "synthetic", "--steps", "1", "--seed", "9", "--threads", "1",
                                         "--save", "base"], cwd=tmp)
    if r.returncode != 0:
        fail(r.stderr)
    step2 = os.path.join(tmp, "int8_model_run", "checkpoints", "step-00000002")
    for why in ("model.safetensors has changed", "no longer exists"):
        r = run([frugal, "train", "--resume", step2, "--threads", "1"])
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        if r.returncode == 0 or len(lines) != 1 or why not in lines[0]:
            fail(f"a base that {why} was not refused in one line: exit {r.returncode}\n{r.stderr}")
        shutil.rmtree(os.path.join(tmp, "base"), ignore_errors=True)
    print("QLoRA: a changed or missing base is refused")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frugal", required=True)
    frugal = ap.parse_args().frugal
    tmp = tempfile.mkdtemp()
    try:
        # Steps of a few tens of milliseconds, so that the kill lands while step 7 or 8 runs.
        base = [frugal, "train", "--arch", "gpt", "--layers", "2", "--dim", "64", "--heads", "4", "--ctx", "64",
                "--vocab", "64", "--data", "synthetic", "--micro-batch", "8", "--steps", "10",
                "--lr", "3e-3", "--warmup", "2", "--threads", "1"]
        accum = ["--accum", "2"]
        fused = ["--fused-update", "--clip-grad-norm", "0"]
        for precision, optimizer, extra in (("fp32", "adamw", accum), ("fp16", "adamw", accum),
                                            ("bf16", "adamw8bit", accum), ("fp32", "adamw8bit", fused)):
            run_args = base + ["--precision", precision, "--optimizer", optimizer] + extra
            name = f"{precision} {optimizer}" + (" fused" if extra == fused else "")
            straight = os.path.join(tmp, f"straight-{precision}-{optimizer}-{len(extra)}")
            r = run(run_args + ["--save", straight, "--summary", straight + ".json"])
            if r.returncode != 0:
                fail(r.stderr)
            crashed = os.path.join(tmp, f"crashed-{precision}" + ("" if optimizer == "adamw" else f"-{optimizer}-{len(extra)}"))
            kill_during_step(run_args + ["--save-every", "5", "--save", crashed], 6)
            ckpts = sorted(os.listdir(os.path.join(crashed, "checkpoints")))
            if ckpts != ["step-00000005"]:
                fail(f"expected only the step-5 checkpoint after the kill, found {ckpts}")
            resumed = os.path.join(tmp, f"resumed-{precision}-{optimizer}-{len(extra)}")
            r = run([frugal, "train", "--resume", crashed, "--threads", "1", "--save", resumed,
                     "--summary", resumed + ".json"])
            if r.returncode != 0:
                fail(r.stderr)
            want = json.load(open(straight + ".json"))["losses"][5:]
            got = json.load(open(resumed + ".json"))
            if got["first_step"] != 6 or got["losses"] != want:
                fail(f"{name}: resumed losses {got['losses']} (from step {got['first_step']}) != straight {want}")
            a = open(os.path.join(straight, "model.safetensors"), "rb").read()
            b = open(os.path.join(resumed, "model.safetensors"), "rb").read()
            if a != b:
                fail(f"{name}: final weights differ from the straight run's")
            print(f"{name}: killed during step 7, resumed from step 5: losses and weights bit-identical")

        # 2. A half-written newer checkpoint is never chosen.
        root = os.path.join(tmp, "crashed-fp32", "checkpoints")
        newer = os.path.join(root, "step-00000009")
        shutil.copytree(os.path.join(root, "step-00000005"), newer)
        with open(os.path.join(newer, "state.safetensors"), "r+b") as f:
            f.truncate(os.path.getsize(os.path.join(newer, "state.safetensors")) // 2)
        partial = os.path.join(root, ".step-00000008.partial")
        os.makedirs(partial)
        r = run([frugal, "train", "--resume", os.path.join(tmp, "crashed-fp32"), "--threads", "1",
                 "--summary", os.path.join(tmp, "again.json")])
        if r.returncode != 0:
            fail(r.stderr)
        if "step-00000009" not in r.stderr or "skipping" not in r.stderr:
            fail("the damaged checkpoint was not reported:\n" + r.stderr)
        if json.load(open(os.path.join(tmp, "again.json")))["first_step"] != 6:
            fail("did not resume from the complete step-5 checkpoint")
        print("a half-written newer checkpoint is skipped for the complete one")

        # 3. Contradicting flags are refused with one line naming the flag.
        for flag in (["--precision", "bf16"], ["--lr", "1e-4"], ["--layers", "3"]):
            r = run([frugal, "train", "--resume", os.path.join(tmp, "crashed-fp16"), "--threads", "1"] + flag)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            if r.returncode == 0 or not lines or flag[0] not in lines[-1] or "contradicts" not in lines[-1]:
                fail(f"{flag} was not refused clearly: exit {r.returncode}\n{r.stderr}")
        print("contradicting flags are refused")

        # 4. QLoRA: the base is rebuilt on --resume, and must be the same.
        qlora_resume(frugal, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("resume: all checks passed")


if __name__ == "__main__":
    main()
