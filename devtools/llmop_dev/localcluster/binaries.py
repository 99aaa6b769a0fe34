"""Locates the cached control-plane binaries (etcd, kube-*, kwok, helm) and builds them on request."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

BIN_DIR_ENV = "LLMOP_BIN_DIR"
DEFAULT_BIN_DIR = Path.home() / ".cache" / "llmop" / "bin" / "current"
BUILD_SCRIPT = Path("scripts") / "k8s-bins.sh"
REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
STAGES_FILE = "kwok-stages.yaml"


class BinariesMissing(RuntimeError):
    """The control-plane binaries are not built (or the bin dir is incomplete)."""


@dataclass(frozen=True)
class Binaries:
    """A directory holding every control-plane binary plus kwok's default stages."""

    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def etcd(self) -> Path:
        return self.root / "etcd"

    @property
    def kube_apiserver(self) -> Path:
        return self.root / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self.root / "kube-controller-manager"

    @property
    def kube_scheduler(self) -> Path:
        return self.root / "kube-scheduler"

    @property
    def kubectl(self) -> Path:
        return self.root / "kubectl"

    @property
    def kwok(self) -> Path:
        return self.root / "kwok"

    @property
    def helm(self) -> Path:
        return self.root / "helm"

    @property
    def kwok_stages(self) -> Path:
        return self.root / STAGES_FILE

    def missing(self) -> list[str]:
        """Names of the required files that are absent or not executable."""
        absent = [name for name in REQUIRED if not os.access(self.root / name, os.X_OK)]
        if not self.kwok_stages.is_file():
            absent.append(STAGES_FILE)
        return absent


def bin_dir() -> Path:
    """The configured bin dir: $LLMOP_BIN_DIR, else ~/.cache/llmop/bin/current."""
    override = os.environ.get(BIN_DIR_ENV)
    return Path(override).expanduser() if override else DEFAULT_BIN_DIR


def build_script() -> Path | None:
    """scripts/k8s-bins.sh of the source checkout this package runs from; None for an installed package."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / BUILD_SCRIPT
        if candidate.is_file() and (parent / "pyproject.toml").is_file():
            return candidate
    return None


def how_to_build() -> str:
    script = build_script()
    where = str(script) if script else "scripts/k8s-bins.sh from the llmop source repository"
    return (
        f"build them with `bash {where}` (needs Go and the Go module proxy; 20-40 min cold), "
        f"or run `llmop dev up --build`, or point ${BIN_DIR_ENV} at a directory holding "
        f"{', '.join(REQUIRED)} and {STAGES_FILE}"
    )


def build(log: Path | None = None) -> Path:
    """Run the build script (idempotent, a no-op when cached) and return the bin dir it prints."""
    script = build_script()
    if script is None:
        raise BinariesMissing(f"cannot build the control-plane binaries from an installed package; {how_to_build()}")
    stderr = log.open("ab") if log else None
    try:
        done = subprocess.run(
            ["bash", str(script)],
            check=False,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=script.parent.parent,
        )
    finally:
        if stderr:
            stderr.close()
    if done.returncode != 0:
        hint = f"; see {log}" if log else ""
        raise BinariesMissing(f"{script} failed with exit code {done.returncode}{hint}")
    lines = done.stdout.decode().strip().splitlines()
    return Path(lines[-1]) if lines else bin_dir()


def find_binaries(directory: Path | None = None, *, build_missing: bool = False) -> Binaries:
    """The complete bin dir, building it first if asked; raises BinariesMissing otherwise."""
    binaries = Binaries(directory or bin_dir())
    absent = binaries.missing()
    if absent and build_missing and directory is None and BIN_DIR_ENV not in os.environ:
        binaries = Binaries(build())
        absent = binaries.missing()
    if absent:
        raise BinariesMissing(
            f"control-plane binaries missing in {binaries.root}: {', '.join(absent)}; {how_to_build()}"
        )
    return binaries
