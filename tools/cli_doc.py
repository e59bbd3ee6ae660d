"""Keeps docs/cli.md's usage blocks equal to what the cvis command prints.

    python3 tools/cli_doc.py [--check] [CVIS]

The first code block of the page is `cvis --help`; the first code block of
each "## COMMAND" section is `cvis COMMAND --help`.  Without --check the
page is rewritten; with it, the exit status is 1 when a block differs."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "cli.md")


def help_text(cvis, *args):
    r = subprocess.run([cvis, *args, "--help"], capture_output=True, text=True, check=True)
    return r.stdout.rstrip("\n")


def refreshed(page, cvis):
    """The page with every usage block replaced by the command's own text."""
    out, section, replaced = [], None, set()
    lines = page.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"## (\w+)\s*$", line)
        if m:
            section = m.group(1)
        key = section or ""
        if line == "```" and key not in replaced:
            j = lines.index("```", i + 1)
            out += ["```", help_text(cvis, *([section] if section else [])), "```"]
            replaced.add(key)
            i = j + 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    cvis = args[0] if args else os.path.join(ROOT, "build", "bin", "cvis")
    with open(PAGE) as f:
        page = f.read()
    new = refreshed(page, cvis)
    if "--check" in sys.argv:
        if new != page:
            print("docs/cli.md differs from the command's --help; run tools/cli_doc.py",
                  file=sys.stderr)
            return 1
        return 0
    with open(PAGE, "w") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
