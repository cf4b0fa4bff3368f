"""Spec-002 requirement dicts, read against the resources a manager knows.

``{"cpu": {"cores": 2}, "memory": {"gb": 4, "enforce": True}, "deploy_lock": {}}``:
each key is a resource id, or else a resource type whose first registered resource is
meant; the inner dict maps unit to amount (an empty one means one of the resource's
first unit, a bare number that many of it) and ``enforce`` is a flag, not an amount.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import ResourceAllocationError
from .machine import GB
from .models import ResourceType
from .resource_config import choice_hint, is_number
from .resource_pool import EPSILON, ResourcePool

__all__ = ["Need", "parse_requirements", "amount_for", "totals", "enforced_memory_bytes"]

# One resolved line of a requirement dict: (requirement key, resource id, unit -> amount).
Need = tuple[str, str, dict[str, float]]

# Keys of a requirement's inner dict that are switches, not amounts.
_FLAGS = frozenset({"enforce"})
# Units a request may use for a resource counted in another unit: name -> (unit, factor).
_CONVERSIONS: dict[str, tuple[str, float]] = {"mb": ("gb", 1 / 1024), "tb": ("gb", 1024.0)}


def parse_requirements(requirements: Mapping[str, Any], resolve: Callable[[str], ResourcePool]) -> list[Need]:
    """Return the resolved lines of ``requirements``, checked against what can ever be granted.

    ``resolve(key)`` returns the pool a key means or raises ``ResourceAllocationError``.

    Raises
    ------
    ResourceAllocationError
        Not a mapping, an unknown resource or unit, a bad amount, or more of a unit than
        the resource's capacity plus burst (summed over keys naming the same resource).
    """
    if not isinstance(requirements, Mapping):
        raise ResourceAllocationError(
            f"requirements must be a mapping of resource to amounts, got {type(requirements).__name__}"
        )
    needs: list[Need] = []
    ceilings: dict[str, dict[str, float]] = {}
    for key, spec in requirements.items():
        pool = resolve(key)
        needs.append((str(key), pool.resource.id, amount_for(pool, str(key), spec)))
        ceilings[pool.resource.id] = pool.ceiling
    for ident, summed in totals(needs).items():
        for unit, value in summed.items():
            ceiling = ceilings[ident][unit]
            if value > ceiling + EPSILON:
                raise ResourceAllocationError(
                    f"requirement of {value:g} {unit} of resource {ident!r} exceeds the {ceiling:g} it can "
                    "ever grant (capacity plus burst); lower the requirement or raise the capacity",
                    details={"resource_id": ident, "unit": unit, "requested": value, "ceiling": ceiling},
                )
    return needs


def totals(needs: list[Need]) -> dict[str, dict[str, float]]:
    """Return resource id -> unit -> the amount all ``needs`` ask of it together."""
    summed: dict[str, dict[str, float]] = {}
    for _, ident, amount in needs:
        into = summed.setdefault(ident, {})
        for unit, value in amount.items():
            into[unit] = into.get(unit, 0.0) + value
    return summed


def amount_for(pool: ResourcePool, key: str, spec: Any) -> dict[str, float]:
    """Return the amount (unit -> quantity) that requirement ``key: spec`` asks of ``pool``.

    ``spec`` is a unit -> amount mapping (``enforce`` is a flag, ``mb``/``tb`` are
    converted to ``gb``), a bare number of the first unit, or empty/None for one.

    Raises
    ------
    ResourceAllocationError
        A unit this resource does not have, a negative or non-numeric amount, or
        ``enforce`` on something other than memory.
    """
    capacity = pool.resource.capacity
    if spec is None or is_number(spec):
        count = 1.0 if spec is None else float(spec)
        if count < 0:
            raise ResourceAllocationError(f"requirement {key!r} asks for a negative amount {spec!r}")
        return {pool.first_unit: count}
    if not isinstance(spec, Mapping):
        raise ResourceAllocationError(
            f"requirement {key!r} must map units to amounts like {{{pool.first_unit!r}: 1}}, got {spec!r}"
        )
    amount: dict[str, float] = {}
    for unit, value in spec.items():
        if unit in _FLAGS:
            if not isinstance(value, bool):
                raise ResourceAllocationError(f"requirement {key!r}: {unit!r} must be true or false, got {value!r}")
            if value and pool.resource.type is not ResourceType.MEMORY:
                raise ResourceAllocationError(
                    f"requirement {key!r}: {unit!r} applies only to memory; remove it from this resource"
                )
            continue
        if not is_number(value) or value < 0:
            raise ResourceAllocationError(
                f"requirement {key!r}: {unit!r} must be a number of at least 0, got {value!r}"
            )
        if unit not in capacity and unit in _CONVERSIONS and _CONVERSIONS[unit][0] in capacity:
            unit, value = _CONVERSIONS[unit][0], value * _CONVERSIONS[unit][1]
        if unit not in capacity:
            raise ResourceAllocationError(
                f"requirement {key!r}: resource {pool.resource.id!r} has no unit {unit!r}"
                f"{choice_hint(str(unit), list(capacity))}"
            )
        amount[unit] = amount.get(unit, 0.0) + float(value)
    return amount or {pool.first_unit: 1.0}


def enforced_memory_bytes(
    requirements: Mapping[str, Any] | None, resolve: Callable[[str], ResourcePool | None]
) -> int | None:
    """Return the memory limit in bytes that ``requirements`` ask to enforce, or None.

    A key counts as memory when it names a memory resource, or (with none known under
    that name) when it is literally ``memory``; the amount is its ``gb`` (or ``mb``).
    """
    for key, spec in (requirements or {}).items():
        if not isinstance(spec, Mapping) or spec.get("enforce") is not True:
            continue
        pool = resolve(key)
        is_memory = pool.resource.type is ResourceType.MEMORY if pool else str(key).lower() == "memory"
        if not is_memory:
            continue
        gb = spec.get("gb")
        if not is_number(gb) and is_number(spec.get("mb")):
            gb = spec["mb"] / 1024
        if is_number(gb) and gb > 0:
            return int(gb * GB)
    return None
