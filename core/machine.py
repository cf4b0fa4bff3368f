"""What this machine offers: CPU cores, memory, free disk, GPUs, and its live load.

The ResourceManager starts from these figures so a workflow that asks for
``{"cpu": {"cores": 2}}`` is measured against the real machine, not a guess.
Detection never raises: a source that cannot be read is simply left out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import psutil

from .models import Resource, ResourceType

__all__ = ["GB", "detect_machine_resources", "detect_gpu_count", "disk_capacity_gb", "system_load"]

GB = 1024**3
# nvidia-smi can hang for seconds when a driver is wedged; detection must stay quick.
_NVIDIA_SMI_TIMEOUT = 2.0


def detect_machine_resources(state_dir: Path | None = None) -> list[Resource]:
    """Return the resources this machine offers, in the order cpu, memory, disk, gpu.

    Parameters
    ----------
    state_dir : Path, optional
        Where orchtui keeps its state; the disk resource is the free space of the file
        system holding it (the working directory when not given).

    Returns
    -------
    list[Resource]
        ``cpu`` (unit ``cores``), ``memory`` (total, unit ``gb``), ``disk`` (free, unit
        ``gb``) and ``gpu`` (unit ``units``) when a GPU is visible.
    """
    found: list[Resource] = []
    cores = os.cpu_count()
    if cores:
        found.append(_detected("cpu", "CPU cores", ResourceType.CPU, {"cores": float(cores)}, "os.cpu_count"))
    try:
        total = psutil.virtual_memory().total
    except (OSError, RuntimeError):
        total = 0
    if total:
        found.append(_detected("memory", "Memory", ResourceType.MEMORY, {"gb": round(total / GB, 2)}, "psutil"))
    free = _free_disk_bytes(state_dir or Path.cwd())
    if free:
        found.append(_detected("disk", "Free disk", ResourceType.DISK, {"gb": disk_capacity_gb(free)}, "disk_usage"))
    gpus = detect_gpu_count()
    if gpus:
        found.append(_detected("gpu", "GPUs", ResourceType.GPU, {"units": float(gpus)}, "gpu"))
    return found


def detect_gpu_count(env: Mapping[str, str] | None = None) -> int:
    """Return how many GPUs this process may use (0 when none is visible).

    ``CUDA_VISIBLE_DEVICES`` wins when set, since it is what CUDA programs will see
    (empty or ``-1`` hides every GPU); otherwise ``nvidia-smi -L`` is asked, briefly.
    """
    environ = os.environ if env is None else env
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        devices = [d for d in visible.split(",") if d.strip()]
        # CUDA stops at the first invalid ordinal, so "-1" (or "0,-1,1") ends the list there.
        count = 0
        for device in devices:
            if device.strip().startswith("-"):
                break
            count += 1
        return count
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return 0
    try:
        listing = subprocess.run(
            [binary, "-L"], capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    if listing.returncode != 0:
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


def system_load() -> dict[str, float]:
    """Return the machine's live load: CPU %, memory % and available memory GB.

    ``cpu_percent`` is measured since the previous call in this process (the first
    call reports 0.0), so a monitor polling at an interval gets the interval's load.
    """
    memory = psutil.virtual_memory()
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "memory_percent": float(memory.percent),
        "memory_available_gb": round(memory.available / GB, 2),
    }


def disk_capacity_gb(free_bytes: int) -> float:
    """Return the ``disk`` resource's capacity for ``free_bytes`` (> 0) of free space: GB
    rounded to hundredths, like the other capacities, but never down to 0 (under 5 MB
    free): a capacity must be positive, and a zero refused every run, even of workflows
    that need no disk."""
    return round(free_bytes / GB, 2) or free_bytes / GB


def _free_disk_bytes(path: Path) -> int:
    # The state directory may not exist yet; its nearest existing parent is on the
    # same file system as it will be.
    probe = path.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return 0


def _detected(ident: str, name: str, kind: ResourceType, capacity: dict[str, float], source: str) -> Resource:
    return Resource(id=ident, name=name, type=kind, capacity=capacity, metadata={"detected": True, "source": source})
