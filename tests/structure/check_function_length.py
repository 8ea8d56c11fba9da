#!/usr/bin/env python3
"""No function in src/ longer than MAX_LINES lines (signature to closing brace) unless the comment
just above it says why, in a sentence starting "Longer than 60 lines because".

The scan is a brace matcher that ignores comments, strings and character literals: a '{' opens a
function body when every scope around it is a namespace, class or struct and the text before it
ends a parameter list. Lambdas and blocks inside a function count towards that function.

  check_function_length.py SRC_DIR            lists offenders, exit 1 if any
  check_function_length.py --self-test        the scanner on made-up sources (run by CTest first)
"""
import re
import sys

from structure_check import run, source_files

MAX_LINES = 60
REASON = "Longer than 60 lines because"


def strip_code(text):
    """The text with comments, strings and char literals blanked (newlines kept, so lines match)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"' and text[max(0, i - 1)] == "R":  # raw string R"delim( ... )delim"
            k = text.index("(", i)
            delim = ")" + text[i + 1:k] + '"'
            j = text.index(delim, k) + len(delim)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (j + 1 - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    # Preprocessor lines (with their continuations) are not code a brace belongs to.
    return re.sub(r"(?m)^[ \t]*#(?:.*\\\n)*.*$", lambda m: re.sub(r"[^\n]", " ", m.group(0)), "".join(out))


def functions(text):
    """(name, first line, last line) of every function body at namespace or class scope."""
    code = strip_code(text)
    found, stack, last_stop = [], [], 0  # stack: 'scope' (namespace/class) or ('function', start, name) or 'block'
    for i, c in enumerate(code):
        if c in ";":
            if all(s == "scope" for s in stack):
                last_stop = i + 1
        elif c == "{":
            if all(s == "scope" for s in stack):
                head = code[last_stop:i]
                stripped = re.sub(r"\s+", " ", head).strip()
                is_scope = re.match(r"^(template\s*<.*>\s*)?(namespace|class|struct|union|enum|extern)\b", stripped) \
                    or stripped.startswith("namespace") or stripped == ""
                if not is_scope and ")" in stripped and not re.search(r"=\s*$", stripped):
                    m = re.search(r"([~\w:]+)\s*\(", stripped)
                    name = m.group(1) if m else stripped[:40]
                    start = last_stop + len(head) - len(head.lstrip())
                    stack.append(("function", code.count("\n", 0, start) + 1, name))
                else:
                    stack.append("scope" if is_scope else "block")
            else:
                stack.append("block")
            last_stop = i + 1
        elif c == "}":
            top = stack.pop() if stack else "scope"
            if isinstance(top, tuple):
                found.append((top[2], top[1], code.count("\n", 0, i) + 1))
            if all(s == "scope" for s in stack):
                last_stop = i + 1
    return found


def offenders(path, text):
    lines = text.split("\n")
    bad = []
    for name, first, last in functions(text):
        length = last - first + 1
        if length <= MAX_LINES:
            continue
        above = "\n".join(lines[max(0, first - 6):first - 1])
        if REASON not in above:
            bad.append(f"{path}:{first}: {name} is {length} lines (more than {MAX_LINES}, and no '{REASON} ...' comment above it)")
    return bad


def self_test():
    body = "\n".join(f"  x += {k};" for k in range(MAX_LINES))
    long_fn = "int too_long(int x) {\n" + body + "\n  return x;\n}\n"
    source = ("#include <x>\n#define M(a) \\\n  { a }\nnamespace a {\nstruct S {\n  int f() const { return 1; }\n};\n" + long_fn +
              "const char* s = \"{ not a brace\";\n// {\n" +
              "/* " + REASON + " the table is one list. */\nint excused() {\n" + body + "\n}\n"
              "int short_one() {\n  auto l = [] { return 2; };\n  return l();\n}\n}  // namespace a\n")
    found = {name: (first, last) for name, first, last in functions(source)}
    assert set(found) == {"f", "too_long", "excused", "short_one"}, found
    bad = offenders("t.cpp", source)
    assert len(bad) == 1 and "too_long" in bad[0], bad


def problems(src):
    return [line for path, text in source_files(src) for line in offenders(path, text)]


if __name__ == "__main__":
    sys.exit(run(self_test, problems, f"function(s) over {MAX_LINES} lines without a reason"))
