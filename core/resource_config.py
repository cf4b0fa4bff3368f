"""Resource definitions: their validation, and the resource config file.

The config file (``ORCHTUI_RESOURCE_CONFIG``, YAML or JSON) lists pools and locks the
machine cannot detect by itself::

    resources:
      - {id: db_pool, type: database, capacity: {connections: 5}}
      - {id: deploy_lock, type: lock}
      - id: openai
        type: external_api
        capacity: {requests: 60}
        limits: {max_concurrent_users: 4, burst_capacity: 0.5, max_allocation_time: 600}

A lock needs no capacity: it is one unit, held by one user at a time. A bare number
as capacity means that many of the type's usual unit (cores, gb, connections, units).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import parse_config_text
from .errors import ConfigError
from .models import Resource, ResourceLimits, ResourceStatus, ResourceType
from .text import did_you_mean

__all__ = [
    "DEFAULT_UNITS",
    "default_unit",
    "choice_hint",
    "is_number",
    "prepare_resource",
    "resource_from_entry",
    "load_resource_config",
]

DEFAULT_UNITS: dict[ResourceType, str] = {
    ResourceType.CPU: "cores",
    ResourceType.MEMORY: "gb",
    ResourceType.DISK: "gb",
    ResourceType.DATABASE: "connections",
}

_ENTRY_KEYS = ("id", "name", "type", "capacity", "limits", "metadata", "status")
_LIMIT_KEYS = ("max_concurrent_users", "burst_capacity", "max_allocation_time")


def default_unit(kind: ResourceType) -> str:
    """Return the unit a bare number means for a resource of type ``kind``."""
    return DEFAULT_UNITS.get(kind, "units")


def is_number(value: object) -> bool:
    """True for a finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def prepare_resource(resource: Resource) -> Resource:
    """Check ``resource`` and fill in what a lock leaves implicit; return it.

    A lock with no capacity gets ``{"units": 1}`` and, unless told otherwise, admits
    one user at a time. Capacity figures become floats and ``allocated`` starts empty.

    Raises
    ------
    ValueError
        The id is empty, the capacity is empty or not made of positive numbers, or a
        limit is out of range; the message names the resource and the bad value.
    """
    if not isinstance(resource.id, str) or not resource.id.strip():
        raise ValueError(f"a resource id must be a non-empty string, got {resource.id!r}")
    ident = resource.id
    resource.type = ResourceType(resource.type)
    resource.status = ResourceStatus(resource.status)
    if resource.type is ResourceType.LOCK:
        if not resource.capacity:
            resource.capacity = {"units": 1.0}
        if resource.limits.max_concurrent_users is None:
            resource.limits = ResourceLimits(1, resource.limits.burst_capacity, resource.limits.max_allocation_time)
    if not isinstance(resource.capacity, dict) or not resource.capacity:
        raise ValueError(f"resource {ident!r} needs a capacity such as {{{default_unit(resource.type)!r}: 4}}")
    capacity: dict[str, float] = {}
    for unit, amount in resource.capacity.items():
        if not isinstance(unit, str) or not unit:
            raise ValueError(f"resource {ident!r} has a capacity unit {unit!r} that is not a name")
        if not is_number(amount) or amount <= 0:
            raise ValueError(f"resource {ident!r} capacity {unit!r} must be a positive number, got {amount!r}")
        capacity[unit] = float(amount)
    resource.capacity = capacity
    _check_limits(ident, resource.limits)
    resource.allocated = {}
    if not resource.name:
        resource.name = ident
    return resource


def _check_limits(ident: str, limits: ResourceLimits) -> None:
    users = limits.max_concurrent_users
    if users is not None and (not isinstance(users, int) or isinstance(users, bool) or users < 1):
        raise ValueError(f"resource {ident!r} max_concurrent_users must be a whole number of at least 1, got {users!r}")
    if not is_number(limits.burst_capacity) or limits.burst_capacity < 0:
        raise ValueError(f"resource {ident!r} burst_capacity must be a fraction of at least 0, got {limits.burst_capacity!r}")
    ttl = limits.max_allocation_time
    if ttl is not None and (not is_number(ttl) or ttl <= 0):
        raise ValueError(f"resource {ident!r} max_allocation_time must be a positive number of seconds, got {ttl!r}")


def resource_from_entry(entry: Any) -> Resource:
    """Build a :class:`Resource` from one config-file entry (a mapping).

    Raises
    ------
    ValueError
        The entry is not a mapping, has an unknown key or type, or a bad value; the
        message says which.
    """
    if not isinstance(entry, dict):
        raise ValueError(f"an entry must be a mapping with at least an id, got {type(entry).__name__}")
    unknown = [k for k in entry if k not in _ENTRY_KEYS]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}{choice_hint(str(unknown[0]), _ENTRY_KEYS)}")
    if "id" not in entry:
        raise ValueError("the entry has no id")
    raw_type = entry.get("type", ResourceType.CUSTOM.value)
    try:
        kind = ResourceType(raw_type)
    except ValueError:
        raise ValueError(
            f"type {raw_type!r} is not a resource type{choice_hint(str(raw_type), ResourceType.choices())}"
        ) from None
    capacity = entry.get("capacity") or {}
    if is_number(capacity):
        capacity = {default_unit(kind): capacity}
    elif not isinstance(capacity, dict):
        raise ValueError(f"capacity must be a mapping of unit to amount, got {capacity!r}")
    raw_limits = entry.get("limits") or {}
    if not isinstance(raw_limits, dict):
        raise ValueError(f"limits must be a mapping, got {raw_limits!r}")
    bad_limit = [k for k in raw_limits if k not in _LIMIT_KEYS]
    if bad_limit:
        raise ValueError(f"unknown limit {bad_limit[0]!r}{choice_hint(str(bad_limit[0]), _LIMIT_KEYS)}")
    metadata = entry.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a mapping, got {metadata!r}")
    try:
        status = ResourceStatus(entry.get("status", ResourceStatus.AVAILABLE.value))
    except ValueError:
        raise ValueError(f"status {entry.get('status')!r} is not one of {', '.join(ResourceStatus.choices())}") from None
    resource = Resource(
        id=entry["id"],
        name=str(entry.get("name") or ""),
        type=kind,
        status=status,
        capacity=dict(capacity),
        limits=ResourceLimits(**raw_limits),
        metadata={**metadata, "source": "config"},
    )
    return prepare_resource(resource)


def load_resource_config(path: Path) -> list[Resource]:
    """Read the resource config file at ``path`` and return its resources in file order.

    The file holds ``resources: [...]`` (or just the list). ``.json`` files are read as
    JSON, anything else as YAML through the safe loader.

    Raises
    ------
    ConfigError
        The file cannot be read or parsed, or an entry is invalid; the message names
        the file and the entry (``resources[1] (db_pool)``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the resource config file ({exc.strerror}); fix ORCHTUI_RESOURCE_CONFIG or create the file",
            details={"file": str(path)},
        ) from None
    data = parse_config_text(text, path, "the resource config file")
    if data is None:
        return []
    if isinstance(data, dict):
        extra = [k for k in data if k != "resources"]
        if extra:
            raise ConfigError(
                f"{path}: unknown top-level key {extra[0]!r} in the resource config file; it holds only 'resources'",
                details={"file": str(path)},
            )
        data = data.get("resources") or []
    if not isinstance(data, list):
        raise ConfigError(f"{path}: 'resources' must be a list of resource entries", details={"file": str(path)})
    resources: list[Resource] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        label = f"resources[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label += f" ({entry['id']})"
        try:
            resource = resource_from_entry(entry)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: {label}: {exc}", details={"file": str(path), "entry": index}) from None
        if resource.id in seen:
            raise ConfigError(
                f"{path}: {label}: the id {resource.id!r} is listed twice; give each resource its own id",
                details={"file": str(path), "entry": index},
            )
        seen.add(resource.id)
        resources.append(resource)
    return resources


def choice_hint(word: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest of ``choices``, else "; known: a, b"."""
    choices = list(choices)
    hint = did_you_mean(word, choices)
    return f" ({hint})" if hint else f"; known: {', '.join(choices)}"
