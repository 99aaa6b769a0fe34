"""`python -m llmop_dev.observability [--check] [--root DIR]`: regenerate the chart's dashboard and rule files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmop_dev.observability.files import source_root, write_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmop_dev.observability", description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date; write nothing")
    args = parser.parse_args(argv)
    root = args.root or source_root()
    changed = write_files(root, check=args.check)
    for path in changed:
        print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(root)}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
