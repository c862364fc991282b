"""Shared fixtures: the built-in data, one small run trained through Python and the same run trained
by the CLI binary (the reference the package must agree with)."""

import os
import subprocess
from pathlib import Path

import pytest

import cobrar_gpu as cg

ROOT = Path(__file__).resolve().parents[2]

# Small and quick on a software adapter: two epochs of a few steps.
FLAGS = dict(arch=(64, 16), epochs=2, max_steps_per_epoch=6, seed=7)


def cli_flags(flags=FLAGS):
    argv = []
    for k, v in flags.items():
        argv += ["--" + k.replace("_", "-"), ",".join(map(str, v)) if isinstance(v, tuple) else str(v)]
    return argv


@pytest.fixture(scope="session")
def cli():
    """The CLI binary: COBRAR_BIN, else the release build of this repository (never skipped)."""
    path = Path(os.environ.get("COBRAR_BIN", ROOT / "target" / "release" / "cobrar-gpu"))
    assert path.is_file(), f"{path} is missing: run `cargo build --release` (or set COBRAR_BIN)"

    def run(*args, check=True):
        p = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)
        if check:
            assert p.returncode == 0, p.stderr
        return p

    return run


@pytest.fixture(scope="session")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("cobrar")


@pytest.fixture(scope="session")
def ds():
    return cg.Dataset.builtin("synthetic")


@pytest.fixture(scope="session")
def py_run(ds, tmp):
    return cg.train(ds, out=tmp / "py", progress=False, **FLAGS)


@pytest.fixture(scope="session")
def cli_run(cli, tmp):
    cli("train", *cli_flags(), "--out", tmp / "cli", "--quiet")
    return cg.Run.load(tmp / "cli")
