"""The accounting of one resource: how much is in use, by whom, and what still fits.

A :class:`ResourcePool` is not thread-safe by itself; the
:class:`~core.resource_manager.ResourceManager` touches pools only under its lock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .models import Resource, ResourceStatus, ResourceUsage

__all__ = ["ResourcePool", "PLACES", "EPSILON"]

# Amounts are floats (0.5 cores, 1.5 GB); sums are rounded to this many places so a
# thousand grants and releases come back to exactly zero.
PLACES = 9
EPSILON = 1e-9
_UNUSABLE = frozenset({ResourceStatus.MAINTENANCE, ResourceStatus.OFFLINE})


@dataclasses.dataclass(slots=True)
class ResourcePool:
    """One resource's live state: units in use, their peak, and who holds them."""

    resource: Resource
    ceiling: dict[str, float]  # capacity * (1 + burst): the hard limit per unit
    in_use: dict[str, float]
    peak: dict[str, float]
    holders: dict[str, int]  # requester id -> number of allocations it holds here

    @classmethod
    def of(cls, resource: Resource) -> ResourcePool:
        """Return an empty pool for ``resource`` (already checked by ``prepare_resource``)."""
        burst = 1.0 + resource.limits.burst_capacity
        ceiling = {unit: round(cap * burst, PLACES) for unit, cap in resource.capacity.items()}
        return cls(
            resource,
            ceiling,
            dict.fromkeys(resource.capacity, 0.0),
            dict.fromkeys(resource.capacity, 0.0),
            {},
        )

    @property
    def first_unit(self) -> str:
        """The unit an empty requirement or a bare number refers to."""
        return next(iter(self.resource.capacity))

    def fits(self, requester: str | None, amount: Mapping[str, float]) -> bool:
        """True if ``amount`` can be granted to ``requester`` (None: a new user) right now."""
        if self.resource.status in _UNUSABLE:
            return False
        users = self.resource.limits.max_concurrent_users
        if users is not None and requester not in self.holders and len(self.holders) >= users:
            return False
        for unit, value in amount.items():
            # .get: a resource replaced after a request was parsed may lack this unit.
            ceiling = self.ceiling.get(unit)
            if ceiling is None or self.in_use[unit] + value > ceiling + EPSILON:
                return False
        return True

    def take(self, requester: str, amount: Mapping[str, float]) -> None:
        """Record a grant of ``amount`` to ``requester`` (the caller checked :meth:`fits`)."""
        for unit, value in amount.items():
            current = round(self.in_use[unit] + value, PLACES)
            self.in_use[unit] = current
            if current > self.peak[unit]:
                self.peak[unit] = current
        self.holders[requester] = self.holders.get(requester, 0) + 1
        self._publish()

    def give_back(self, requester: str, amount: Mapping[str, float]) -> None:
        """Record that ``requester`` returned a grant of ``amount``."""
        for unit, value in amount.items():
            if unit in self.in_use:
                self.in_use[unit] = max(0.0, round(self.in_use[unit] - value, PLACES))
        left = self.holders.get(requester, 0) - 1
        if left > 0:
            self.holders[requester] = left
        else:
            self.holders.pop(requester, None)
        self._publish()

    def usage(self) -> ResourceUsage:
        """Return this pool's figures; ``available`` is what may still be granted (to the ceiling)."""
        return ResourceUsage(
            resource_id=self.resource.id,
            capacity=dict(self.resource.capacity),
            current=dict(self.in_use),
            peak=dict(self.peak),
            available={unit: round(self.ceiling[unit] - self.in_use[unit], PLACES) for unit in self.ceiling},
            users=len(self.holders),
        )

    def usage_dict(self) -> dict[str, Any]:
        """Return :meth:`usage` as a dict plus name, type, status, ceiling, utilization %, limits."""
        resource = self.resource
        data = self.usage().to_dict()
        data.update(
            name=resource.name,
            type=resource.type.value,
            status=resource.status.value,
            ceiling=dict(self.ceiling),
            utilization={unit: round(100.0 * self.in_use[unit] / cap, 1) for unit, cap in resource.capacity.items()},
            allocations=sum(self.holders.values()),
            max_concurrent_users=resource.limits.max_concurrent_users,
            burst_capacity=resource.limits.burst_capacity,
        )
        return data

    def _publish(self) -> None:
        resource = self.resource
        # A fresh dict (not an in-place update) so a reader of resource.allocated
        # outside the manager's lock always sees one consistent state.
        resource.allocated = {unit: value for unit, value in self.in_use.items() if value}
        if resource.status in _UNUSABLE:
            return
        users = resource.limits.max_concurrent_users
        if not self.holders:
            resource.status = ResourceStatus.AVAILABLE
        elif (users is not None and len(self.holders) >= users) or any(
            self.in_use[unit] >= self.ceiling[unit] - EPSILON for unit in self.ceiling
        ):
            resource.status = ResourceStatus.EXHAUSTED
        else:
            resource.status = ResourceStatus.ALLOCATED
