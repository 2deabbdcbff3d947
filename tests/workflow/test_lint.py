"""The workflow passes Snakemake's linter and snakefmt, and the package passes ruff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.workflow import REPO, SNAKEMAKE

BIN = Path(sys.executable).parent


def test_snakemake_lint_is_clean():
    result = subprocess.run([SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_snakefmt_is_clean():
    result = subprocess.run([str(BIN / "snakefmt"), "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean():
    result = subprocess.run([str(BIN / "ruff"), "check", "workflow", "tests"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
