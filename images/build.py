"""Prints (or runs) the docker build commands for every image in images/build-matrix.yaml."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

MATRIX = Path(__file__).resolve().parent / "build-matrix.yaml"
ROOT = MATRIX.parent.parent


def load(path: Path = MATRIX) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def commands(matrix: dict[str, Any], push: bool = False) -> list[list[str]]:
    """One `docker buildx build` argv per image: the operator first, then each engine build."""
    tail = ["--push"] if push else ["--load"]
    operator = matrix["operator"]
    argv = [
        ["docker", "buildx", "build", "-f", operator["dockerfile"], "-t", operator["image"], *tail, operator["context"]]
    ]
    for build in matrix["builds"]:
        engine = matrix["engines"][build["engine"]]
        dockerfile = engine["dockerfile"]
        args = {
            "ENGINE_VERSION": engine["version"],
            "TORCH_CUDA_ARCH_LIST": build["torch_cuda_arch_list"],
            "FLASH_ATTN": build["flash_attn"],
            "VARIANT": build["variant"],
        }
        build_args = [part for key, value in args.items() for part in ("--build-arg", f"{key}={value}")]
        context = str(Path(dockerfile).parent)
        argv.append(["docker", "buildx", "build", "-f", dockerfile, *build_args, "-t", build["image"], *tail, context])
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="store_true", help="run the builds (default: print them)")
    parser.add_argument("--push", action="store_true", help="push instead of loading into the local daemon")
    parser.add_argument("--only", default=None, help="only images whose reference contains this text")
    args = parser.parse_args(argv)
    for command in commands(load(), push=args.push):
        if args.only and not any(args.only in part for part in command):
            continue
        print(shlex.join(command), flush=True)
        if args.run:
            subprocess.run(command, cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
