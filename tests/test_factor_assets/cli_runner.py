"""Run the project's console commands the way a user does, in a test's own instance and data root."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_cli(args: list[str], *, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``args[0]`` is a console script of the environment (dagster, factor-pipeline)."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_ok(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def start_cli(args: list[str], *, env: dict[str, str]) -> subprocess.Popen:
    """Like :func:`run_cli` but returns at once (output merged, text): for commands that must run together."""
    return subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
