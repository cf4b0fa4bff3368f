"""The ResourceManager: who holds how much of which resource, and who waits for it.

Resources come from the machine (:mod:`core.machine`: cpu cores, memory GB, free
disk GB, GPUs), from the resource config file (:mod:`core.resource_config`: pools and
locks, overriding detected ones by id) and from ``register_resource``/``add_resource``.

Requests are spec-002 requirement dicts (:mod:`core.resource_requirements`), such as
``{"cpu": {"cores": 2}, "memory": {"gb": 4, "enforce": True}, "deploy_lock": {}}``.

Guarantees, all under one lock:

* never more than ``capacity * (1 + burst_capacity)`` of any unit is handed out, and
  never to more than ``max_concurrent_users`` distinct requesters at once;
* a multi-resource request is granted whole or not at all, so no partial grant is
  ever visible;
* a release wakes every waiter at once, and listeners run after the lock is dropped;
* allocations past their expiry (``ResourceLimits.max_allocation_time`` or an explicit
  ``duration``) are reclaimed on the next allocation attempt, by
  :meth:`ResourceManager.reclaim_expired` and by :meth:`ResourceManager.monitor_resources`.
"""

from __future__ import annotations

import heapq
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .clock import SYSTEM_CLOCK, Clock
from .config import load_settings
from .errors import ResourceAllocationError
from .machine import detect_machine_resources, system_load
from .machine_locks import RECHECK_SECONDS, MachineLocks
from .models import Resource, ResourceAllocation, ResourceLimits, ResourceType, ResourceUsage, new_id
from .resource_config import choice_hint, default_unit, is_number, load_resource_config, prepare_resource
from .resource_pool import ResourcePool
from .resource_requirements import Need, enforced_memory_bytes, parse_requirements, totals

__all__ = ["ResourceManager", "AllocationListener", "ReleaseListener"]

log = logging.getLogger(__name__)

ReleaseListener = Callable[[], None]
AllocationListener = Callable[[str, ResourceAllocation], None]

# A blocked waiter wakes at least this often even if nobody notifies it, so an
# expiry on the system clock is never missed for long.
_MAX_WAIT_SLICE = 60.0

class ResourceManager:
    """Allocates the machine's and the config file's resources to tasks and users.

    Parameters
    ----------
    detect : bool
        Detect cpu, memory, disk and gpu from the machine (False: start empty, for tests).
    config_path : Path, optional
        Resource config file; default ``ORCHTUI_RESOURCE_CONFIG`` (or the ``resource_config``
        setting). Its entries override detected resources of the same id.
    clock : Clock
        Time source for expiry and timeouts; tests pass a ``ManualClock``.
    state_dir : Path, optional
        Directory whose file system the ``disk`` resource measures (default: the state
        dir). A ``lock`` resource is also held across every process that shares it
        (:mod:`core.machine_locks`); without a state dir, within this process only.

    Raises
    ------
    ConfigError
        The resource config file is missing, unreadable or invalid.
    """

    def __init__(
        self,
        *,
        detect: bool = True,
        config_path: Path | str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        state_dir: Path | str | None = None,
    ) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._pools: dict[str, ResourcePool] = {}
        self._first_of_type: dict[ResourceType, str] = {}
        self._allocations: dict[str, ResourceAllocation] = {}
        self._by_user: dict[str, dict[str, None]] = {}  # ordered set of allocation ids
        self._deadlines: dict[str, float] = {}  # allocation id -> clock.monotonic() expiry
        self._expiry_heap: list[tuple[float, str]] = []
        self._waiting = 0
        self._release_listeners: tuple[ReleaseListener, ...] = ()
        self._allocation_listeners: tuple[AllocationListener, ...] = ()
        if config_path is None or (detect and state_dir is None):
            settings = load_settings()
            config_path = config_path if config_path is not None else settings.resource_config
            state_dir = state_dir if state_dir is not None else settings.state_dir
        self._machine_locks = MachineLocks(Path(state_dir) / "locks") if state_dir is not None else None
        self._locks_held_elsewhere: set[str] = set()  # as last tried: another process held them
        self._recheck: threading.Timer | None = None
        if detect:
            for resource in detect_machine_resources(Path(state_dir) if state_dir is not None else None):
                self.add_resource(resource)
        if config_path is not None:
            for resource in load_resource_config(Path(config_path)):
                self.add_resource(resource)
        # A ManualClock jump must wake waiters so they re-read the time and reclaim
        # expired grants; a weak reference keeps the clock from pinning this manager.
        wake = weakref.WeakMethod(self._wake_waiters)
        clock.on_advance(lambda: _call_if_alive(wake))

    # ------------------------------------------------------------------ registry

    def register_resource(
        self,
        resource_id: str,
        type: ResourceType | str,
        capacity: Mapping[str, float] | float | None = None,
        limits: ResourceLimits | None = None,
        name: str | None = None,
    ) -> Resource:
        """Create a resource and add it; a bare number as capacity means the type's unit.

        Returns
        -------
        Resource
            The registered resource (live: its ``allocated`` follows the grants).

        Raises
        ------
        ResourceAllocationError
            The type, capacity or limits are invalid, or the id is held by allocations.
        """
        try:
            kind = ResourceType(type)
        except ValueError:
            raise ResourceAllocationError(
                f"resource {resource_id!r} has type {type!r}, which is not a resource type"
                f"{choice_hint(str(type), ResourceType.choices())}"
            ) from None
        if is_number(capacity):
            capacity = {default_unit(kind): float(capacity)}  # type: ignore[arg-type]
        resource = Resource(
            id=resource_id,
            name=name or "",
            type=kind,
            capacity=dict(capacity or {}),  # type: ignore[arg-type]
            limits=limits or ResourceLimits(),
        )
        return self.add_resource(resource)

    def add_resource(self, resource: Resource) -> Resource:
        """Add ``resource``, replacing any resource of the same id that nobody holds.

        Returns
        -------
        Resource
            ``resource`` itself, checked and completed (a lock gets one unit, one user).

        Raises
        ------
        ResourceAllocationError
            The resource is invalid, or one of the same id still has allocations.
        """
        try:
            prepare_resource(resource)
        except ValueError as exc:
            raise ResourceAllocationError(f"cannot add resource: {exc}") from None
        pool = ResourcePool.of(resource)
        with self._cond:
            old = self._pools.get(resource.id)
            if old is not None and old.holders:
                raise ResourceAllocationError(
                    f"resource {resource.id!r} cannot be replaced while {len(old.holders)} user(s) hold it; "
                    "release its allocations first",
                    details={"resource_id": resource.id, "holders": sorted(old.holders)},
                )
            self._pools[resource.id] = pool
            self._first_of_type = {}
            for ident, each in self._pools.items():
                self._first_of_type.setdefault(each.resource.type, ident)
            self._cond.notify_all()  # more capacity may satisfy someone waiting
        return resource

    def get_resource(self, resource_id: str) -> Resource | None:
        """Return the resource with this id (or, failing that, the first of this type), or None."""
        pool = self._resolve(resource_id)
        return pool.resource if pool is not None else None

    def list_resources(self) -> list[Resource]:
        """Return every resource, in registration order."""
        with self._cond:
            return [pool.resource for pool in self._pools.values()]

    # ---------------------------------------------------------------- listeners

    def add_release_listener(self, callback: ReleaseListener) -> None:
        """Call ``callback()`` after every release (explicit, by user, or by expiry).

        It runs on the releasing thread after the lock is dropped, so it may call back
        into the manager; it must be quick. An exception it raises is logged and ignored.
        """
        with self._cond:
            self._release_listeners = (*self._release_listeners, callback)

    def add_allocation_listener(self, callback: AllocationListener) -> None:
        """Call ``callback(event, allocation)`` for each grant and release, outside the lock.

        ``event`` is ``"allocated"``, ``"released"``, or ``"expired"`` for a grant reclaimed
        past its expiry. An exception it raises is logged and ignored.
        """
        with self._cond:
            self._allocation_listeners = (*self._allocation_listeners, callback)

    def remove_release_listener(self, callback: ReleaseListener) -> None:
        """Stop calling ``callback`` after releases; an unknown callback is ignored.

        Whoever outlives a shared manager less (an orchestrator, an engine) removes its
        listeners on shutdown, so the manager does not keep it alive or call into it.
        """
        with self._cond:
            self._release_listeners = tuple(cb for cb in self._release_listeners if cb != callback)

    def remove_allocation_listener(self, callback: AllocationListener) -> None:
        """Stop calling ``callback`` on grants and releases; an unknown callback is ignored."""
        with self._cond:
            self._allocation_listeners = tuple(cb for cb in self._allocation_listeners if cb != callback)

    # --------------------------------------------------------------- allocation

    def allocate(
        self,
        resource_id: str,
        requester_id: str,
        amount: Mapping[str, Any] | float | None = None,
        timeout: float | None = 0,
        *,
        duration: float | None = None,
    ) -> ResourceAllocation:
        """Grant ``amount`` of one resource to ``requester_id``, waiting up to ``timeout`` s.

        ``amount`` is a unit -> quantity dict, or a number of the resource's first unit
        (None: one). ``timeout`` 0 or None tries once; ``math.inf`` waits as long as it
        takes. ``duration`` makes the grant expire after that many seconds.

        Returns
        -------
        ResourceAllocation
            The grant; pass its ``id`` to :meth:`release`.

        Raises
        ------
        ResourceAllocationError
            The resource is unknown, the amount can never fit, or it did not fit in time.
        """
        needs = self._parse({resource_id: {} if amount is None else amount})
        granted = self._acquire(requester_id, needs, timeout, duration)
        if granted is None:
            _, ident, wanted = needs[0]
            usage = self.get_usage(ident)
            raise ResourceAllocationError(
                f"resource {ident!r} could not grant {_fmt(wanted)} to {requester_id!r} within {timeout or 0:g} s "
                f"({_fmt(usage.current)} of {_fmt(self._pools[ident].ceiling)} in use by {usage.users} user(s)); "
                "retry later or release allocations",
                details={"resource_id": ident, "requested": wanted, "in_use": usage.current},
            )
        return granted[0]

    def allocate_resources(
        self,
        user_id: str,
        requirements: Mapping[str, Any],
        timeout: float | None = None,
        *,
        duration: float | None = None,
    ) -> dict[str, str] | None:
        """Grant every requirement to ``user_id`` at once, or nothing (spec 002).

        ``timeout`` None or 0 tries once; otherwise waits up to that many seconds for
        releases (``math.inf``: no limit). Release with :meth:`deallocate_resources`.

        Returns
        -------
        dict[str, str] or None
            Requirement key -> the resource id granted for it, or None if it did not fit in time.

        Raises
        ------
        ResourceAllocationError
            The requirements are malformed or can never be met (see :meth:`requirement_problem`).
        """
        needs = self._parse(requirements)
        granted = self._acquire(user_id, needs, timeout, duration)
        return None if granted is None else {key: ident for key, ident, _ in needs}

    def try_allocate_requirements(self, user_id: str, requirements: Mapping[str, Any]) -> dict[str, str] | None:
        """Grant all of ``requirements`` to ``user_id`` if they fit right now; never blocks.

        Returns
        -------
        dict[str, str] or None
            Requirement key -> resource id granted, or None when something does not fit.

        Raises
        ------
        ResourceAllocationError
            The requirements are malformed or can never be met.
        """
        return self.allocate_resources(user_id, requirements, None)

    def release(self, allocation_id: str) -> bool:
        """Return one grant; waiters are woken at once.

        Returns
        -------
        bool
            True if the allocation was held and is now released, False if unknown
            (already released or reclaimed after expiry).
        """
        events: list[tuple[str, ResourceAllocation]] = []
        with self._cond:
            allocation = self._release_locked(allocation_id)
            if allocation is not None:
                events.append(("released", allocation))
                self._cond.notify_all()
        self._dispatch(events)
        return allocation is not None

    def deallocate_resources(self, user_id: str, allocation_ids: list[str] | None = None) -> bool:
        """Release what ``user_id`` holds: everything, or only ``allocation_ids``.

        ``allocation_ids`` may name allocation ids or resource ids (as returned by
        :meth:`allocate_resources`); only grants held by ``user_id`` are touched.

        Returns
        -------
        bool
            True if something was released and every named id matched a grant of this user.
        """
        events: list[tuple[str, ResourceAllocation]] = []
        missing = False
        with self._cond:
            held = list(self._by_user.get(user_id, ()))
            if allocation_ids is None:
                chosen = held
            else:
                chosen = []
                for wanted in allocation_ids:
                    match = [a for a in held if a == wanted or self._allocations[a].resource_id == wanted]
                    missing = missing or not match
                    chosen.extend(a for a in match if a not in chosen)
            for allocation_id in chosen:
                allocation = self._release_locked(allocation_id)
                if allocation is not None:
                    events.append(("released", allocation))
            if events:
                self._cond.notify_all()
        self._dispatch(events)
        return bool(events) and not missing

    def reclaim_expired(self) -> list[ResourceAllocation]:
        """Release every allocation past its expiry and tell the listeners ("expired").

        Returns
        -------
        list[ResourceAllocation]
            The allocations reclaimed now (empty when none had expired).
        """
        events: list[tuple[str, ResourceAllocation]] = []
        with self._cond:
            self._reclaim_locked(events)
        self._dispatch(events)
        return [allocation for _, allocation in events]

    def get_allocations(self, user_id: str | None = None) -> list[ResourceAllocation]:
        """Return the live allocations, of one user or of everyone, oldest first."""
        with self._cond:
            if user_id is None:
                return list(self._allocations.values())
            return [self._allocations[a] for a in self._by_user.get(user_id, ())]

    # ------------------------------------------------------------------ queries

    def check_availability(self, resource: str, amount: Mapping[str, Any] | float = 1) -> bool:
        """True if ``amount`` of ``resource`` (id or type) could be granted to a new user now.

        An unknown resource, or an amount it can never hold, is simply not available.
        """
        try:
            needs = self._parse({resource: amount})
        except ResourceAllocationError:
            return False
        events: list[tuple[str, ResourceAllocation]] = []
        with self._cond:
            self._reclaim_locked(events)
            fits = self._fits_locked(None, needs)
        self._dispatch(events)
        return fits

    def shortfall(self, requirements: Mapping[str, Any]) -> set[str]:
        """Return the keys of ``requirements`` that do not fit now: too little left here,
        or a lock another process held when it was last tried. After a failed
        :meth:`try_allocate_requirements`, these are what the requester waits for; the
        rest it could have had (a scheduler must not hold those back for it).

        Raises:
            ResourceAllocationError: the requirements are malformed or can never be met.
        """
        needs = self._parse(requirements)
        with self._cond:
            return {key for key, ident, amount in needs
                    if ident not in self._pools or not self._pools[ident].fits(None, amount)
                    or (ident in self._locks_held_elsewhere and not self._pools[ident].holders)}

    def requirement_problem(self, requirements: Mapping[str, Any]) -> str | None:
        """Return why ``requirements`` can never be granted, or None if they can.

        Catches an unknown resource (with a did-you-mean), an unknown unit, a bad amount,
        and more than capacity plus burst, so a caller fails fast instead of waiting forever.
        """
        try:
            self._parse(requirements)
        except ResourceAllocationError as exc:
            return exc.message
        return None

    def memory_limit_bytes(self, requirements: Mapping[str, Any] | None) -> int | None:
        """Return the memory limit in bytes a step asked to enforce, or None.

        Only a memory requirement (key ``memory`` or a memory resource's id) carrying
        ``enforce: true`` and an amount in ``gb`` (or ``mb``) sets a limit.
        """
        return enforced_memory_bytes(requirements, self._resolve)

    def get_usage(self, resource_id: str) -> ResourceUsage:
        """Return the usage of one resource (id or type).

        Raises
        ------
        ResourceAllocationError
            No such resource.
        """
        pool = self._require(resource_id)
        with self._cond:
            return pool.usage()

    def snapshot(self) -> list[ResourceUsage]:
        """Return the usage of every resource at one instant, in registration order."""
        with self._cond:
            return [pool.usage() for pool in self._pools.values()]

    def get_resource_usage(self, resource_id: str | None = None) -> dict[str, Any]:
        """Return usage statistics of one resource, or system-wide when ``resource_id`` is None.

        The system-wide dict has ``timestamp``, ``total_resources``, ``active_allocations``,
        ``users``, ``waiting`` (blocked requests), ``resources`` (id -> the per-resource
        dict) and ``system`` (the machine's live ``cpu_percent``, ``memory_percent``,
        ``memory_available_gb``).

        Raises
        ------
        ResourceAllocationError
            ``resource_id`` names no resource.
        """
        if resource_id is not None:
            pool = self._require(resource_id)
            with self._cond:
                return pool.usage_dict()
        with self._cond:
            resources = {ident: pool.usage_dict() for ident, pool in self._pools.items()}
            idle_locks = [ident for ident, pool in self._pools.items()
                          if pool.resource.type is ResourceType.LOCK and not pool.holders]
            totals = {
                "timestamp": self._clock.time(),
                "total_resources": len(self._pools),
                "active_allocations": len(self._allocations),
                "users": len(self._by_user),
                "waiting": self._waiting,
            }
        if self._machine_locks is not None:
            for ident in idle_locks:
                if self._machine_locks.held_elsewhere(ident):
                    _show_held_elsewhere(resources[ident])
        return {**totals, "resources": resources, "system": system_load()}

    def monitor_resources(self, interval: float = 1.0, stop_event: threading.Event | None = None) -> Iterator[dict[str, Any]]:
        """Yield :meth:`get_resource_usage` every ``interval`` seconds until ``stop_event`` is set.

        Each round also reclaims expired allocations, so a monitor doubles as the reaper.
        Without a ``stop_event`` it runs until the consumer stops iterating.
        """
        stop = stop_event or threading.Event()
        while not stop.is_set():
            self.reclaim_expired()
            yield self.get_resource_usage()
            if stop.wait(interval):
                return

    # ---------------------------------------------------------------- internals

    def _resolve(self, key: str) -> ResourcePool | None:
        pool = self._pools.get(key)
        if pool is None:
            try:
                ident = self._first_of_type.get(ResourceType(key))
            except ValueError:
                return None
            pool = self._pools.get(ident) if ident is not None else None
        return pool

    def _require(self, key: str) -> ResourcePool:
        pool = self._resolve(key)
        if pool is None:
            # Type names that would resolve are valid spellings too ("cpu" for "cpu_main").
            known = [*self._pools, *(kind.value for kind in self._first_of_type if kind.value not in self._pools)]
            raise ResourceAllocationError(
                f"unknown resource {key!r}{choice_hint(str(key), known or ['(none registered)'])}",
                details={"resource": key, "known": list(self._pools)},
            )
        return pool

    def _parse(self, requirements: Mapping[str, Any]) -> list[Need]:
        """Resolve a requirement dict, checking it can ever be met; raise if not."""
        return parse_requirements(requirements, self._require)

    def _acquire(
        self, requester: str, needs: list[Need], timeout: float | None, duration: float | None
    ) -> list[ResourceAllocation] | None:
        if duration is not None and (not is_number(duration) or duration <= 0):
            raise ResourceAllocationError(f"an allocation duration must be a positive number of seconds, got {duration!r}")
        deadline = self._clock.monotonic() + timeout if timeout and timeout > 0 else None
        while True:
            events: list[tuple[str, ResourceAllocation]] = []
            waited = False
            with self._cond:
                self._reclaim_locked(events)
                granted = self._grant_locked(requester, needs, duration, events)
                if granted is None and deadline is not None:
                    remaining = deadline - self._clock.monotonic()
                    if remaining > 0:
                        self._waiting += 1
                        try:
                            self._cond.wait(self._wait_slice(remaining))
                        finally:
                            self._waiting -= 1
                        waited = True
            # Expiry notices go out between rounds so a long wait never delays them.
            self._dispatch(events)
            if granted is not None or not waited:
                return granted

    def _wait_slice(self, remaining: float) -> float:
        wait = min(remaining, _MAX_WAIT_SLICE)
        if self._expiry_heap:
            wait = min(wait, max(0.0, self._expiry_heap[0][0] - self._clock.monotonic()))
        return wait

    def _fits_locked(self, requester: str | None, needs: list[Need]) -> bool:
        if len(needs) == 1:  # the common case needs no summing per resource
            _, ident, amount = needs[0]
            pool = self._pools.get(ident)
            return pool is not None and pool.fits(requester, amount)
        pools = self._pools
        return all(ident in pools and pools[ident].fits(requester, summed) for ident, summed in totals(needs).items())

    def _grant_locked(
        self,
        requester: str,
        needs: list[Need],
        duration: float | None,
        events: list[tuple[str, ResourceAllocation]],
    ) -> list[ResourceAllocation] | None:
        if not self._fits_locked(requester, needs) or not self._take_machine_locks(needs):
            return None
        now, wall = self._clock.monotonic(), self._clock.time()
        granted: list[ResourceAllocation] = []
        for _, ident, amount in needs:
            pool = self._pools[ident]
            ttl = pool.resource.limits.max_allocation_time
            if duration is not None:
                ttl = duration if ttl is None else min(ttl, duration)
            allocation = ResourceAllocation(
                id=new_id("alloc"),
                resource_id=ident,
                requester_id=requester,
                amount=dict(amount),
                allocated_at=wall,
                expires_at=None if ttl is None else wall + ttl,
            )
            pool.take(requester, amount)
            self._allocations[allocation.id] = allocation
            self._by_user.setdefault(requester, {})[allocation.id] = None
            if ttl is not None:
                self._deadlines[allocation.id] = now + ttl
                heapq.heappush(self._expiry_heap, (now + ttl, allocation.id))
            granted.append(allocation)
            events.append(("allocated", allocation))
        return granted

    def _release_locked(self, allocation_id: str) -> ResourceAllocation | None:
        allocation = self._allocations.pop(allocation_id, None)
        if allocation is None:
            return None
        if self._deadlines.pop(allocation_id, None) is not None and len(self._expiry_heap) > 64 + 2 * len(self._deadlines):
            # Early releases leave stale heap entries behind; rebuild before they pile up.
            self._expiry_heap = [(deadline, ident) for ident, deadline in self._deadlines.items()]
            heapq.heapify(self._expiry_heap)
        held = self._by_user.get(allocation.requester_id)
        if held is not None:
            held.pop(allocation_id, None)
            if not held:
                del self._by_user[allocation.requester_id]
        pool = self._pools.get(allocation.resource_id)
        if pool is not None:
            pool.give_back(allocation.requester_id, allocation.amount)
            if pool.resource.type is ResourceType.LOCK and not pool.holders and self._machine_locks is not None:
                self._machine_locks.release(allocation.resource_id)
        return allocation

    def _take_machine_locks(self, needs: list[Need]) -> bool:
        """Take the machine-wide side of each lock in ``needs`` that this process does not
        hold yet; False (having taken none) when another process holds one."""
        locks = self._machine_locks
        if locks is None:
            return True
        taken: list[str] = []
        for _, ident, _ in needs:
            pool = self._pools[ident]
            if pool.resource.type is not ResourceType.LOCK or pool.holders or ident in taken:
                continue  # not a lock, or this process holds it already
            if not locks.try_acquire(ident):
                for each in taken:
                    locks.release(each)
                self._locks_held_elsewhere.add(ident)
                self._arm_recheck()
                return False
            self._locks_held_elsewhere.discard(ident)
            taken.append(ident)
        return True

    def _arm_recheck(self) -> None:
        """Try again soon: no process is told when another one drops a lock."""
        if self._recheck is not None and self._recheck.is_alive():
            return
        timer = threading.Timer(RECHECK_SECONDS, _call_if_alive, args=(weakref.WeakMethod(self._recheck_locks),))
        timer.daemon = True
        self._recheck = timer
        timer.start()

    def _recheck_locks(self) -> None:
        """Wake every waiter and the dispatcher, as a release here would."""
        self._wake_waiters()
        for callback in self._release_listeners:
            try:
                callback()
            except Exception:  # a listener's bug must not stop the others
                log.exception("resource release listener failed")

    def _reclaim_locked(self, events: list[tuple[str, ResourceAllocation]]) -> None:
        if not self._expiry_heap:
            return
        now = self._clock.monotonic()
        reclaimed = False
        # No local alias of the heap: a release below may rebuild it.
        while self._expiry_heap and self._expiry_heap[0][0] <= now:
            deadline, allocation_id = heapq.heappop(self._expiry_heap)
            if self._deadlines.get(allocation_id) != deadline:
                continue  # released before it expired
            allocation = self._release_locked(allocation_id)
            if allocation is not None:
                events.append(("expired", allocation))
                reclaimed = True
        if reclaimed:
            self._cond.notify_all()

    def _wake_waiters(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _dispatch(self, events: list[tuple[str, ResourceAllocation]]) -> None:
        if not events:
            return
        for event, allocation in events:
            for listener in self._allocation_listeners:
                try:
                    listener(event, allocation)
                except Exception:  # a listener's bug must not break allocation
                    log.exception("resource allocation listener failed on %s of %s", event, allocation.id)
        if any(event != "allocated" for event, _ in events):
            for callback in self._release_listeners:
                try:
                    callback()
                except Exception:  # a listener's bug must not break release
                    log.exception("resource release listener failed")


def _show_held_elsewhere(usage: dict[str, Any]) -> None:
    """Report a lock that another process holds as fully used, and say so."""
    usage["current"] = dict(usage["capacity"])
    usage["available"] = dict.fromkeys(usage["capacity"], 0.0)
    usage["utilization"] = dict.fromkeys(usage["capacity"], 100.0)
    usage["held_by_another_process"] = True


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


def _fmt(amount: Mapping[str, float]) -> str:
    return ", ".join(f"{value:g} {unit}" for unit, value in amount.items()) or "nothing"
