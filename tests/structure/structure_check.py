"""The command line both structure checks share: run the check's self-test first (so a check that
could never fail does not pass), then the check on SRC_DIR; print every problem and a count, exit 1
if there is any.

  SCRIPT SRC_DIR | SCRIPT --self-test
"""
import os
import sys


def source_files(src):
    """(path relative to src's parent, text) of every .h and .cpp below src, in a stable order."""
    top = os.path.dirname(os.path.normpath(src))
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".h", ".cpp")):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    yield os.path.relpath(path, top), f.read()


def run(self_test, problems, what):
    """self_test(): raises on failure; problems(src): a list of lines; `what` names them in the count."""
    self_test()
    if sys.argv[1:] == ["--self-test"]:
        print("self-test passed")
        return 0
    found = problems(sys.argv[1])
    for line in found:
        print(line)
    print(f"{len(found)} {what}")
    return 1 if found else 0
