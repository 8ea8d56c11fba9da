#!/usr/bin/env python3
"""The include order of src/ (DESIGN.md "Lower layers never include higher ones"):

    core <- kernels, io, comm, jinja <- nn, linalg, text <- models <- train <- report <- run, experiments <- cli

A file in folder X may include headers of X itself and of folders on a lower level only; folders
on one level do not include each other. A folder of src/ missing from LEVELS is an error too: a new
folder must be given its place. Besides, cli/ includes nothing of models/ or nn/: what a model is
and how a run builds it belong to the run layer (src/run/), which config files, the C++ API and
Python share with the command line.

  check_layering.py SRC_DIR      lists upward includes, exit 1 if any
  check_layering.py --self-test  the check on a made-up tree with an upward include (CTest runs
                                 it first, so a check that could never fail does not pass)
"""
import os
import re
import sys
import tempfile

from structure_check import run, source_files

LEVELS = {
    "core": 0,
    "kernels": 1, "io": 1, "comm": 1, "jinja": 1,
    "nn": 2, "linalg": 2, "text": 2,
    "models": 3,
    "train": 4,
    "report": 5,
    "run": 6, "experiments": 6,
    "cli": 7,
}

# Folders a folder may not include although they lie below it.
SKIPPED = {"cli": {"models", "nn"}}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.MULTILINE)


def violations(src):
    found = [f"src/{folder}/ has no place in the include order (add it to LEVELS in {__file__})"
             for folder in sorted(os.listdir(src))
             if os.path.isdir(os.path.join(src, folder)) and folder not in LEVELS]
    for path, text in source_files(src):
        folder = path.split(os.sep)[1]
        if folder not in LEVELS:
            continue
        for match in INCLUDE.finditer(text):
            target = match.group(1)
            if target == folder or (target not in LEVELS and not os.path.isdir(os.path.join(src, target))):
                continue  # its own folder, or not a folder of src/ (a system or test header)
            line = text.count("\n", 0, match.start()) + 1
            if LEVELS.get(target, 99) >= LEVELS[folder]:
                found.append(f"{path}:{line}: {folder} (level {LEVELS[folder]}) includes {target}/ "
                             f"(level {LEVELS.get(target, '?')}): upward or sideways")
            elif target in SKIPPED.get(folder, ()):
                found.append(f"{path}:{line}: {folder} includes {target}/: models are built by the run layer (src/run/)")
    return found


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        for folder, text in {
            "core": '#include "core/tensor.h"\n#include <vector>\n',
            # The cycle this check was written after: report includes train (allowed), and train
            # included report for a byte formatter (upward).
            "train": '#include "core/tensor.h"\n#include "models/model.h"\n#include "report/format.h"\n',
            "report": '#include "train/trainer.h"\n',
            "nn": '#include "linalg/svd.h"\n',  # sideways: nn and linalg share a level
            # What issue 33 moved out: a command deciding what a model is.
            "cli": '#include "run/run_spec.h"\n#include "models/gpt.h"\n',
        }.items():
            os.makedirs(os.path.join(src, folder))
            with open(os.path.join(src, folder, "a.cpp"), "w") as f:
                f.write(text)
        os.makedirs(os.path.join(src, "models"))
        with open(os.path.join(src, "models", "model.h"), "w") as f:
            f.write('#pragma once\n#include "train/trainer.h"\n')
        os.makedirs(os.path.join(src, "newthing"))
        found = violations(src)
        expected = ["src/cli/a.cpp:2: cli includes models/: models are built by the run layer",
                    "src/models/model.h:2: models (level 3) includes train/",
                    "src/newthing/ has no place in the include order",
                    "src/nn/a.cpp:1: nn (level 2) includes linalg/",
                    "src/train/a.cpp:3: train (level 4) includes report/"]
        assert len(found) == len(expected), found
        for text in expected:
            assert any(text in line for line in found), (text, found)


if __name__ == "__main__":
    sys.exit(run(self_test, violations, "include(s) against the layer order"))
