"""pytest setup for the Python module's tests (CTest runs them: `python_module`). The module comes
from PYTHONPATH (build/python) and the command-line tool from FRUGAL_BINARY (build/frugal)."""
import os
import shutil
import subprocess

import pytest


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


@pytest.fixture(scope="session")
def tiny_gpt(tmp_path_factory, cli):
    """A saved tiny GPT model directory (byte-level, 256 tokens)."""
    out = tmp_path_factory.mktemp("model") / "gpt"
    cli("train", "--layers", 2, "--dim", 32, "--heads", 2, "--ctx", 16, "--steps", 2, "--micro-batch", 4,
        "--sample-tokens", 0, "--save", out)
    return out
