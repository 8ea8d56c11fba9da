"""pytest setup for the Python module's tests (CTest runs them: `python_module`). The module comes
from PYTHONPATH (build/python) and the command-line tool from FRUGAL_BINARY (build/frugal)."""
import json
import os
import shutil
import subprocess

import pytest

# One thread in every process of the session, this one included (the machine rates are cached per
# thread count, and the tool's runs get OMP_NUM_THREADS=1 as well).
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def frugal_binary():
    path = os.environ.get("FRUGAL_BINARY", "")
    assert path and os.access(path, os.X_OK), "FRUGAL_BINARY must name the built frugal executable"
    return path


@pytest.fixture(scope="session")
def cli(frugal_binary):
    """Runs `frugal ARGS...` (output decoded as frugal.generate decodes: UTF-8, invalid bytes replaced)."""
    def run(*args, check=True):
        result = subprocess.run([frugal_binary, *map(str, args)], capture_output=True, text=True, errors="replace",
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
        if check and result.returncode != 0:
            raise AssertionError(f"frugal {' '.join(map(str, args))} failed:\n{result.stderr}")
        return result
    return run


@pytest.fixture(scope="session", autouse=True)
def pinned_machine_rates(tmp_path_factory, frugal_binary):
    """One set of machine rates for every process of the session. The cost model prices steps with
    rates measured once and cached (train/machine_rates.h), but a rate measured while the machine
    was busy is measured again by the next process that finds it quiet: under a parallel ctest the
    tool and this Python process could then price the same run differently (predicted step times,
    and the autopilot's choice). Measured once here, then marked quiet, the cache serves them all."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["XDG_CACHE_HOME"] = str(cache)  # (before this process's first frugal call)
    subprocess.run([frugal_binary, "plan", "--threads", "1"], check=True, capture_output=True,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    path = cache / "frugal" / "machine_rates.json"
    rates = json.loads(path.read_text())
    assert rates, "the plan measured no rates"
    for entry in rates.values():
        entry["busy_cores"] = 0.0
    path.write_text(json.dumps(rates))


@pytest.fixture(scope="session")
def tiny_gpt(tmp_path_factory, cli):
    """A saved tiny GPT model directory (byte-level, 256 tokens)."""
    out = tmp_path_factory.mktemp("model") / "gpt"
    cli("train", "--layers", 2, "--dim", 32, "--heads", 2, "--ctx", 16, "--steps", 2, "--micro-batch", 4,
        "--sample-tokens", 0, "--save", out)
    return out
