"""Shared fixtures: every test gets its own state directory and working directory."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = REPO / "workflows"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ORCHTUI_DIR at a fresh directory so no test sees another's runs."""
    state = tmp_path / "state"
    monkeypatch.setenv("ORCHTUI_DIR", str(state))
    monkeypatch.delenv("ORCHTUI_CONFIG", raising=False)
    # No pools or locks unless a test declares them: otherwise the repository's
    # workflows/resources.yaml (found from the working directory) would leak into tests.
    no_resources = tmp_path / "test-config" / "no-resources.yaml"
    no_resources.parent.mkdir()
    no_resources.write_text("resources: []\n")
    monkeypatch.setenv("ORCHTUI_RESOURCE_CONFIG", str(no_resources))
    monkeypatch.delenv("ORCHTUI_DASK_SCHEDULER", raising=False)
    return state


@pytest.fixture
def dead_owner() -> tuple[int, float]:
    """Return (pid, start time) of a process that has exited and been reaped: a run
    recorded with it as owner is one whose process died."""
    proc = subprocess.Popen([sys.executable, "-c", "import os, psutil; print(os.getpid(), psutil.Process().create_time())"],
                            stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    pid, started = out.split()
    return int(pid), float(started)


@pytest.fixture
def workflows_dir() -> Path:
    """The bundled example workflows."""
    return WORKFLOWS_DIR


@pytest.fixture
def cli_env(isolated_state: Path) -> dict[str, str]:
    """Environment for running ``python -m orchtui`` as a real subprocess."""
    env = dict(os.environ)
    env["ORCHTUI_DIR"] = str(isolated_state)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    return env


@pytest.fixture
def orchtui_cmd() -> list[str]:
    """The argv prefix that runs the CLI with this interpreter."""
    return [sys.executable, "-m", "orchtui"]


@contextmanager
def made_read_only(directory: Path) -> Iterator[Path]:
    """Make ``directory`` one nobody may add files to (chmod, or the immutable flag when
    we are root, whom permissions do not bind), and restore it after.

    Skips the test when that cannot be done.
    """
    if os.geteuid() != 0:
        mode = directory.stat().st_mode
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            directory.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("running as root without a working chattr: cannot make a read-only directory")
    try:
        yield directory
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


@contextmanager
def made_kept_from_others(directory: Path, mode: int) -> Iterator[Callable[[list[str]], list[str]]]:
    """Chmod ``directory`` to ``mode`` and yield what turns an argv into one that runs
    bound by that mode (as its owner or not: give the same bits to all three).

    As root (whom permissions do not bind) the directory is also handed to uid 12345
    and the argv runs under ``capsh`` without the capabilities that override
    permissions. Restored after. Skips the test when root has no ``capsh``.
    """
    stat = directory.stat()
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh: cannot run as a user whom permissions bind")
        os.chown(directory, 12345, 12345)

        def bound(argv: list[str]) -> list[str]:
            return [capsh, "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--", "-c",
                    shlex.join(argv)]
    else:
        def bound(argv: list[str]) -> list[str]:
            return argv
    directory.chmod(mode)
    try:
        yield bound
    finally:
        if os.geteuid() == 0:
            os.chown(directory, stat.st_uid, stat.st_gid)
        directory.chmod(stat.st_mode & 0o7777)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory nobody may write to (:func:`made_read_only`)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    with made_read_only(directory):
        yield directory


@pytest.fixture
def read_only() -> Callable[[Path], AbstractContextManager[Path]]:
    """:func:`made_read_only`, for a test that makes a directory it filled read-only."""
    return made_read_only


@pytest.fixture
def kept_from_others() -> Callable[[Path, int], AbstractContextManager[Callable[[list[str]], list[str]]]]:
    """:func:`made_kept_from_others`: permissions that bind a subprocess even when we are root."""
    return made_kept_from_others
