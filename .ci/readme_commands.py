#!/usr/bin/env python3
"""Print the README's two set-up commands (its "Quick start" bash block), one a line, as written.

.ci/run runs them verbatim in a fresh clone, so CI proves what a new user runs instead of a copy
that could drift from it. Any other shape of that block (a third command, a command continued
over two lines, a different test command) fails here with one line, exit 1: whoever changes the
README then decides, in this file, what CI should run.

Standard library only: it runs before any virtual environment exists.

    python3 .ci/readme_commands.py [README.md]
"""

from __future__ import annotations

import sys
from pathlib import Path

HEADING = "## Quick start"
FENCE = "```bash"
SETUP_START = "python3 -m venv .venv"  # the first command makes the venv the second one uses
TEST_COMMAND = ".venv/bin/python -m pytest -q"


class Shape(Exception):
    """The README's quick start is not the two commands this script expects."""


def quick_start_block(text: str) -> list[str]:
    """The lines of the first ``bash`` block under the Quick start heading (up to the next heading)."""
    lines = text.splitlines()
    if HEADING not in lines:
        raise Shape(f"no {HEADING!r} heading")
    section = lines[lines.index(HEADING) + 1:]
    section = section[:next((i for i, ln in enumerate(section) if ln.startswith("## ")), len(section))]
    if FENCE not in section:
        raise Shape(f"no {FENCE} block under {HEADING!r}")
    block = section[section.index(FENCE) + 1:]
    if "```" not in block:
        raise Shape(f"the {FENCE} block under {HEADING!r} is not closed")
    return block[:block.index("```")]


def quick_start_commands(text: str) -> list[str]:
    """The two commands, checked for the shape .ci/run relies on."""
    commands = [ln for ln in quick_start_block(text) if ln.strip()]
    if len(commands) != 2:
        raise Shape(f"the quick start holds {len(commands)} lines, not two commands (set-up, then tests)")
    for ln in commands:
        if ln.rstrip().endswith("\\") or ln.lstrip().startswith("#"):
            raise Shape(f"the quick start line {ln!r} is not a whole command")
    if not commands[0].startswith(SETUP_START):
        raise Shape(f"the first command does not start with {SETUP_START!r}")
    if commands[1] != TEST_COMMAND:
        raise Shape(f"the second command is {commands[1]!r}, not {TEST_COMMAND!r}")
    return commands


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent / "README.md")
    try:
        commands = quick_start_commands(path.read_text(encoding="utf-8"))
    except (OSError, Shape) as exc:
        print(f"readme_commands: {path}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(commands))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
