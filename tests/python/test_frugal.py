"""The Python module against the command-line tool it shares its library with: the same runs give
identical losses and summaries, the same plans and gradients; errors are frugal.Error with the
tool's one-line message; a step callback and Ctrl-C stop a run cleanly; the GIL is free while frugal
computes."""
import json
import os
import signal
import struct
import threading

import numpy as np
import pytest

import frugal

# What differs between two runs of one configuration: wall time, RSS, the machine rates' first measurement.
TIMINGS = {"step_time_s", "tokens_per_s", "samples_per_s", "peak_rss_bytes", "rates_measurement", "communication_s"}


def without_timings(summary):
    return {k: v for k, v in summary.items() if k not in TIMINGS}


def flags(spec):
    """The command-line flags of a spec dict, in its order."""
    args = []
    for key, value in spec.items():
        if value is True:
            args.append(f"--{key}")
        elif value is not False:
            args += [f"--{key}", ",".join(value) if isinstance(value, list) else str(value)]
    return args


def yaml_text(spec):
    return "".join(f"{key.replace('-', '_')}: {json.dumps(value)}\n" for key, value in spec.items())


# The README's example runs (README "Examples", "Llama family"), each cut to a few steps.
README_RUNS = {
    "cnn-fashion-mnist": {"arch": "cnn", "data": "fashion-mnist", "steps": 3, "micro-batch": 64, "lr": 2e-3},
    "gpt-fortunes": {"arch": "gpt", "layers": 6, "dim": 256, "heads": 8, "ctx": 128, "data": "fortunes", "steps": 2,
                     "sample-tokens": 0},
    "gpt-accumulation": {"arch": "gpt", "data": "fortunes", "micro-batch": 4, "accum": 4, "steps": 3,
                         "sample-tokens": 0},
    "gpt-sqrt-checkpointing": {"arch": "gpt", "layers": 12, "checkpoint": "sqrt", "steps": 2, "sample-tokens": 0},
    "llama": {"arch": "llama", "layers": 4, "dim": 128, "heads": 4, "kv-heads": 2, "data": "fortunes", "steps": 2,
              "sample-tokens": 0},
    "qwen3-style": {"arch": "llama", "layers": 4, "dim": 128, "heads": 4, "kv-heads": 2, "head-dim": 64,
                    "qk-norm": True, "data": "fortunes", "steps": 2, "sample-tokens": 0},
    "demo-with-sample": {"steps": 3, "sample-tokens": 20},
}


@pytest.mark.parametrize("name", sorted(README_RUNS))
def test_flags_config_and_python_train_the_same_run(name, cli, tmp_path):
    spec = dict(README_RUNS[name], threads=1)
    cli("train", *flags(spec), "--summary", tmp_path / "flags.json")
    (tmp_path / "run.yaml").write_text(yaml_text(spec))
    cli("train", "--config", tmp_path / "run.yaml", "--summary", tmp_path / "config.json")
    from_python = frugal.train(spec)
    from_flags = json.loads((tmp_path / "flags.json").read_text())
    from_config = json.loads((tmp_path / "config.json").read_text())
    assert len(from_flags["losses"]) == spec["steps"]
    assert from_config["losses"] == from_flags["losses"] == from_python["losses"]  # bit for bit
    assert without_timings(from_config) == without_timings(from_flags)
    assert without_timings(from_python) == without_timings(from_flags)


def test_lora_fine_tune_of_a_saved_model_and_its_replay(cli, tiny_gpt, tmp_path):
    text = tmp_path / "my.txt"
    text.write_text("frugal fine-tunes in little memory. " * 200)
    spec = {"model": str(tiny_gpt), "data": str(text), "lora-rank": 8, "lora-targets": ["c_attn", "c_proj", "c_fc"],
            "steps": 3, "micro-batch": 4, "threads": 1, "sample-tokens": 0}
    cli("train", *flags(spec), "--summary", tmp_path / "flags.json", "--save-adapter", tmp_path / "a1")
    from_python = frugal.train(dict(spec, **{"save-adapter": str(tmp_path / "a2")}))
    from_flags = json.loads((tmp_path / "flags.json").read_text())
    assert from_python["losses"] == from_flags["losses"]
    assert (tmp_path / "a1" / "adapter_model.safetensors").read_bytes() == \
        (tmp_path / "a2" / "adapter_model.safetensors").read_bytes()
    # The summary's record replays the run (--config SUMMARY, or a spec {"config": SUMMARY}).
    cli("train", "--config", tmp_path / "flags.json", "--summary", tmp_path / "replay.json")
    replay = json.loads((tmp_path / "replay.json").read_text())
    assert replay["losses"] == from_flags["losses"]
    assert without_timings(replay) == without_timings(from_flags)
    assert frugal.train({"config": str(tmp_path / "flags.json")})["losses"] == from_flags["losses"]


# Ten configurations for plan: GPT, Llama, LoRA, nf4/int8 bases, precision, ZeRO ranks, memory budgets.
PLANS = [
    {"arch": "gpt", "layers": 6, "dim": 256, "heads": 8, "ctx": 128, "micro-batch": 16},
    {"arch": "gpt", "layers": 12, "checkpoint": "optimal", "activation-budget": "64MiB"},
    {"arch": "llama", "layers": 4, "dim": 128, "heads": 4, "kv-heads": 2, "precision": "bf16", "checkpoint": "sqrt"},
    {"arch": "llama", "layers": 4, "dim": 128, "heads": 4, "lora-rank": 8,
     "lora-targets": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"},
    {"arch": "llama", "layers": 4, "dim": 128, "heads": 4, "lora-rank": 16, "base-precision": "nf4", "precision": "bf16"},
    {"arch": "gpt", "layers": 4, "lora-rank": 4, "base-precision": "int8", "optimizer": "adamw8bit"},
    {"arch": "gpt", "layers": 4, "dim": 128, "heads": 4, "zero": 1, "ranks": 2},
    {"arch": "gpt", "layers": 4, "dim": 128, "heads": 4, "zero": 3, "ranks": 2, "precision": "bf16"},
    {"arch": "gpt", "layers": 12, "dim": 384, "heads": 6, "ctx": 256, "batch-size": 64, "memory-budget": "1GiB"},
    {"allow": "optimizer,precision", "arch": "llama", "batch-size": 32, "ctx": 128, "layers": 4,
     "memory-budget": "256MiB"},
]


@pytest.mark.parametrize("index", range(len(PLANS)))
def test_python_plan_equals_the_cli_plan(index, cli):
    spec = dict(sorted(PLANS[index].items()))  # (a dict's command line stands for its keys in sorted order)
    from_cli = json.loads(cli("plan", *flags(spec), "--json").stdout)
    from_python = frugal.plan(spec)
    from_cli.pop("search_seconds", None)  # (the autopilot's own wall time)
    from_python.pop("search_seconds", None)
    assert from_python == from_cli


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": {"int64": "I64", "float32": "F32"}[str(array.dtype)], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        assert info["dtype"] == "F32"
        out[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=np.float32).reshape(info["shape"])
    return out


@pytest.mark.parametrize("extra", [{}, {"lora-rank": 4, "accum": 2}, {"precision": "bf16", "checkpoint": "sqrt"}])
def test_python_grad_equals_the_grad_file(extra, cli, tiny_gpt, tmp_path):
    rng = np.random.default_rng(5)
    batch = {"inputs": rng.integers(0, 256, size=(4, 16)), "targets": rng.integers(0, 256, size=(4, 16))}
    write_safetensors(tmp_path / "batch.safetensors", batch)
    spec = dict({"model": str(tiny_gpt), "threads": 1}, **extra)
    printed = cli("grad", *flags(spec), "--batch", tmp_path / "batch.safetensors", "--out", tmp_path / "g.safetensors")
    from_file = read_safetensors(tmp_path / "g.safetensors")
    from_python = frugal.grad(spec, batch)
    assert from_python.pop("loss") == json.loads(printed.stdout)["loss"]
    assert sorted(from_python) == sorted(from_file)
    for name, gradient in from_file.items():
        assert from_python[name].dtype == np.float32 and from_python[name].shape == gradient.shape
        assert np.array_equal(from_python[name], gradient), name  # bit for bit


def test_generate_and_tokenize(cli, tiny_gpt):
    settings = {"model": str(tiny_gpt), "prompt": "The ", "tokens": 12, "temperature": 0, "threads": 1}
    printed = cli("generate", *flags(settings)).stdout
    assert frugal.generate(settings) + "\n" == printed
    assert frugal.generate(model=tiny_gpt, prompt="The ", tokens=12, temperature=0, threads=1) + "\n" == printed
    # Nucleus sampling through the same key table: the same draws as the command line's --top-p.
    sampled = dict(settings, temperature=1.5, seed=4)
    nucleus = dict(sampled, **{"top-p": 0.3})
    assert frugal.generate(nucleus) + "\n" == cli("generate", *flags(nucleus)).stdout
    assert frugal.generate(nucleus) != frugal.generate(sampled)
    with pytest.raises(frugal.Error, match="--top-p"):
        frugal.generate(dict(settings, top_p=0))
    ids = frugal.tokenize(text="héllo")
    assert ids.dtype == np.int32 and list(ids) == list("héllo".encode())


def test_a_step_callback_stops_the_run_cleanly(tmp_path):
    seen = []
    spec = {"layers": 1, "dim": 32, "heads": 2, "ctx": 16, "micro-batch": 4, "steps": 6, "sample-tokens": 0,
            "threads": 1, "save": str(tmp_path / "run"), "save-every": 100, "metrics": str(tmp_path / "m.jsonl")}
    summary = frugal.train(spec, on_step=lambda m: seen.append(m) or m["step"] < 3)
    assert [m["step"] for m in seen] == [1, 2, 3]
    assert summary["stopped_early"] is True and len(summary["losses"]) == 3
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 3
    # A checkpoint at the step it stopped at, and resuming from it finishes the run as if never stopped.
    assert (tmp_path / "run" / "checkpoints" / "step-00000003" / "trainer.json").is_file()
    resumed = frugal.train({"resume": str(tmp_path / "run"), "sample-tokens": 0, "threads": 1})
    straight = frugal.train({k: v for k, v in spec.items() if k not in ("save", "save-every", "metrics")})
    assert resumed["losses"] == straight["losses"][3:]


def test_a_callback_that_raises_stops_the_run_and_its_exception_propagates(tmp_path):
    spec = {"layers": 1, "dim": 32, "heads": 2, "ctx": 16, "micro-batch": 4, "steps": 6, "sample-tokens": 0,
            "threads": 1, "save": str(tmp_path / "run"), "save-every": 100}

    def fail_at_two(m):
        if m["step"] == 2:
            raise ValueError("stop here")
        return 1  # any truthy value goes on

    with pytest.raises(ValueError, match="stop here"):
        frugal.train(spec, on_step=fail_at_two)
    assert (tmp_path / "run" / "checkpoints" / "step-00000002" / "trainer.json").is_file()


def test_ctrl_c_stops_after_the_current_step(tmp_path):
    spec = {"layers": 1, "dim": 32, "heads": 2, "ctx": 16, "micro-batch": 4, "steps": 50, "sample-tokens": 0,
            "threads": 1, "save": str(tmp_path / "run"), "save-every": 100}
    steps = []

    def interrupt_at_two(m):
        steps.append(m["step"])
        if m["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
        return True

    with pytest.raises(KeyboardInterrupt):
        frugal.train(spec, on_step=interrupt_at_two)
    assert steps == [1, 2]
    assert (tmp_path / "run" / "checkpoints" / "step-00000002" / "trainer.json").is_file()


def test_the_gil_is_released_while_steps_run():
    counter = [0]
    done = threading.Event()

    def count():
        while not done.is_set():
            counter[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    marks = []
    try:
        frugal.train({"layers": 2, "dim": 128, "heads": 4, "ctx": 64, "micro-batch": 8, "steps": 6,
                      "sample-tokens": 0, "threads": 1}, on_step=lambda m: marks.append(counter[0]) or True)
    finally:
        done.set()
        thread.join()
    # Between two callbacks the other thread kept counting: frugal did not hold the GIL through the step.
    gains = sorted(b - a for a, b in zip(marks, marks[1:]))
    assert gains[len(gains) // 2] > 1000, gains


@pytest.mark.parametrize("spec, message", [
    ({"model": 42}, "spec: model: expected a string, got 42"),
    ({"lora-rank": "eight"}, "spec: lora-rank: expected an integer, got \"eight\""),
    ({"lora-rnak": 8}, "spec: unknown key 'lora-rnak' for frugal train; did you mean 'lora-rank'?"),
    ({"lora_rank": 8, "lora-rank": 4}, "both set lora-rank"),
    ({"precision": "fp8"}, "spec: precision: --precision: fp8 not in {fp32,fp16,bf16}"),
    ({"model": object()}, "spec key 'model': a object is not a setting value"),
    ({"seed": 2 ** 70}, "spec key 'seed': 1180591620717411303424 does not fit in 64 bits"),
    ({"lora-alpha": 16, "steps": 1}, "--lora-alpha/--lora-dropout/--lora-targets need --lora-rank R"),
    ({"model": "/nonexistent/model", "steps": 1}, "/nonexistent/model"),
])
def test_bad_specs_raise_one_line_errors(spec, message):
    with pytest.raises(frugal.Error) as error:
        frugal.train(spec)
    text = str(error.value)
    assert message in text and "\n" not in text, text
    assert isinstance(error.value, RuntimeError)


def test_bad_batches_raise_one_line_errors(tiny_gpt):
    with pytest.raises(frugal.Error, match="a batch needs arrays 'inputs' and 'targets'"):
        frugal.grad({"model": str(tiny_gpt)}, {"inputs": np.zeros((2, 16), dtype=np.int64)})
    with pytest.raises(frugal.Error, match="has dtype uint8"):
        frugal.grad({"model": str(tiny_gpt)}, {"inputs": np.zeros((2, 16), dtype=np.uint8),
                                               "targets": np.zeros((2, 16), dtype=np.uint8)})
    with pytest.raises(frugal.Error, match="not a token id"):
        frugal.grad({"model": str(tiny_gpt)}, {"inputs": np.full((2, 16), 0.5), "targets": np.zeros((2, 16))})
