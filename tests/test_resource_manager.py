"""ResourceManager: detection, config file, requirements, allocation, waiting, expiry, concurrency."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from core.clock import ManualClock
from core.errors import ConfigError, ResourceAllocationError
from core.machine import GB, detect_gpu_count, disk_capacity_gb
from core.models import Resource, ResourceAllocation, ResourceLimits, ResourceStatus, ResourceType
from core.resource_manager import ResourceManager

# Generous upper bound for a handshake that should complete at once; never a timing assert.
HANDSHAKE = 10.0


def manager(clock: ManualClock | None = None) -> ResourceManager:
    """An empty manager (no machine detection), optionally on a manual clock."""
    return ResourceManager(detect=False, clock=clock) if clock else ResourceManager(detect=False)


def wait_until(predicate: Callable[[], bool]) -> bool:
    """Poll ``predicate`` until true or HANDSHAKE seconds pass; return its last value."""
    pause = threading.Event()
    for _ in range(int(HANDSHAKE / 0.005)):
        if predicate():
            return True
        pause.wait(0.005)
    return predicate()


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, threading.Event, list[object]]:
    """Run ``fn`` on a daemon thread; return the thread, a done event and a result box."""
    done = threading.Event()
    box: list[object] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # the test inspects what happened
            box.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, box


# ------------------------------------------------------------------- detection


def test_detection_reads_cpu_memory_and_disk_from_the_machine(tmp_path: Path) -> None:
    rm = ResourceManager(state_dir=tmp_path)
    cpu, memory, disk = rm.get_resource("cpu"), rm.get_resource("memory"), rm.get_resource("disk")
    assert cpu is not None and cpu.type is ResourceType.CPU
    assert cpu.capacity == {"cores": float(os.cpu_count() or 0)}
    assert memory is not None and memory.capacity["gb"] == pytest.approx(psutil.virtual_memory().total / GB, abs=0.01)
    assert disk is not None and 0 < disk.capacity["gb"] <= psutil.disk_usage(str(tmp_path)).total / GB


@pytest.mark.parametrize(("free", "gb"), [(5 * GB, 5.0), (int(1.234 * GB), 1.23), (3 * 1024**2, 3 / 1024)])
def test_disk_capacity_is_rounded_but_never_to_zero(free: int, gb: float) -> None:
    assert disk_capacity_gb(free) == pytest.approx(gb)


def test_a_nearly_full_disk_is_still_a_resource_that_can_be_registered() -> None:
    rm = manager()
    disk = rm.register_resource("disk", ResourceType.DISK, {"gb": disk_capacity_gb(3 * 1024**2)})
    assert disk.capacity["gb"] > 0


def test_detect_false_starts_empty() -> None:
    assert manager().list_resources() == []


@pytest.mark.parametrize(
    ("visible", "count"), [("0,1", 2), ("", 0), ("-1", 0), ("0,-1,1", 1), ("GPU-8a1f", 1)]
)
def test_gpu_count_follows_cuda_visible_devices(visible: str, count: int) -> None:
    assert detect_gpu_count({"CUDA_VISIBLE_DEVICES": visible}) == count


def test_gpu_resource_appears_when_cuda_devices_are_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    gpu = ResourceManager(state_dir=tmp_path).get_resource("gpu")
    assert gpu is not None and gpu.capacity == {"units": 2.0}


# ----------------------------------------------------------------- config file


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_adds_pools_and_locks(tmp_path: Path) -> None:
    config = write(
        tmp_path / "resources.yaml",
        "resources:\n"
        "  - {id: db_pool, type: database, capacity: {connections: 5}}\n"
        "  - {id: deploy_lock, type: lock}\n",
    )
    rm = ResourceManager(detect=False, config_path=config)
    pool, lock = rm.get_resource("db_pool"), rm.get_resource("deploy_lock")
    assert pool is not None and pool.type is ResourceType.DATABASE and pool.capacity == {"connections": 5.0}
    assert lock is not None and lock.capacity == {"units": 1.0} and lock.limits.max_concurrent_users == 1


def test_config_entries_override_detected_resources_by_id(tmp_path: Path) -> None:
    config = write(tmp_path / "r.json", json.dumps({"resources": [{"id": "cpu", "type": "cpu", "capacity": 64}]}))
    rm = ResourceManager(config_path=config, state_dir=tmp_path)
    assert rm.get_resource("cpu").capacity == {"cores": 64.0}  # type: ignore[union-attr]
    assert [r.id for r in rm.list_resources()][0] == "cpu"  # keeps its place


def test_config_file_is_found_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "r.yml", "- {id: api, type: external_api, capacity: {requests: 3}}\n")
    monkeypatch.setenv("ORCHTUI_RESOURCE_CONFIG", str(config))
    assert ResourceManager(detect=False).get_resource("api") is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resources: [{id: db, capacty: {x: 1}}]", "resources[0] (db): unknown key 'capacty' (did you mean 'capacity'?)"),
        ("resources: [{id: db, type: databse}]", "did you mean 'database'?"),
        ("resources: [{id: ok, type: lock}, {id: db, capacity: {conn: -2}}]", "resources[1] (db)"),
        ("resources: [{id: db, capacity: {conn: five}}]", "must be a positive number"),
        ("resources: [{id: a, type: lock}, {id: a, type: lock}]", "listed twice"),
        ("resources: [{type: lock}]", "has no id"),
        ("resources: {id: a}", "must be a list"),
        ("pools: []", "unknown top-level key 'pools'"),
        ("resources: [{id: a, limits: {max_users: 1}}]", "did you mean 'max_concurrent_users'?"),
        ("resources: [{id: a, capacity: {x: 1}, limits: {max_concurrent_users: 0}}]", "at least 1"),
        ("resources: [{id: a\n", "not valid YAML"),
        ("resources: [!!python/object/apply:os.system ['true']]", "not valid YAML"),
    ],
)
def test_config_errors_name_the_file_and_the_entry(tmp_path: Path, text: str, expected: str) -> None:
    config = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        ResourceManager(detect=False, config_path=config)
    assert str(config) in caught.value.message
    assert expected in caught.value.message


def test_a_resource_config_that_is_not_yaml_is_one_line_at_file_line_column(tmp_path: Path) -> None:
    config = write(tmp_path / "resources.yaml", "resources:\n  - {id: a, type: lock\n")
    with pytest.raises(ConfigError) as caught:
        ResourceManager(detect=False, config_path=config)
    message = caught.value.message
    assert message.startswith(f"{config}:3:1: the resource config file is not valid YAML: ") and "\n" not in message


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the resource config file"):
        ResourceManager(detect=False, config_path=tmp_path / "absent.yaml")


# -------------------------------------------------------------------- registry


def test_spec004_add_resource_example_works() -> None:
    rm = manager()
    gpu = Resource(
        id="gpu_1", name="GPU Resource", type=ResourceType.GPU, capacity={"units": 1},
        limits=ResourceLimits(max_concurrent_users=1),
    )
    assert rm.add_resource(gpu) is gpu
    assert rm.allocate_resources("a", {"gpu": {"units": 1}}) == {"gpu": "gpu_1"}
    assert rm.allocate_resources("b", {"gpu_1": {}}) is None
    assert gpu.allocated == {"units": 1.0} and gpu.status is ResourceStatus.EXHAUSTED


def test_register_resource_with_a_bare_number_uses_the_types_unit() -> None:
    rm = manager()
    assert rm.register_resource("db", "database", 5).capacity == {"connections": 5.0}
    assert rm.register_resource("mem", ResourceType.MEMORY, 2.5, name="RAM").capacity == {"gb": 2.5}


@pytest.mark.parametrize(
    ("capacity", "limits", "expected"),
    [
        ({}, None, "needs a capacity"),
        ({"cores": 0}, None, "must be a positive number"),
        ({"cores": True}, None, "must be a positive number"),
        ({"cores": 2}, ResourceLimits(burst_capacity=-0.5), "burst_capacity"),
        ({"cores": 2}, ResourceLimits(max_allocation_time=0), "max_allocation_time"),
    ],
)
def test_register_resource_rejects_bad_definitions(capacity: dict, limits: ResourceLimits | None, expected: str) -> None:
    with pytest.raises(ResourceAllocationError, match=expected):
        manager().register_resource("cpu", "cpu", capacity, limits)


def test_register_resource_rejects_an_unknown_type() -> None:
    with pytest.raises(ResourceAllocationError, match="did you mean 'memory'"):
        manager().register_resource("m", "memroy", 4)


def test_a_held_resource_cannot_be_replaced_but_a_free_one_can() -> None:
    rm = manager()
    rm.register_resource("db", "database", 2)
    rm.allocate_resources("a", {"db": {}})
    with pytest.raises(ResourceAllocationError, match="release its allocations first"):
        rm.register_resource("db", "database", 9)
    rm.deallocate_resources("a")
    assert rm.register_resource("db", "database", 9).capacity == {"connections": 9.0}


# ---------------------------------------------------------------- requirements


def test_requirement_key_may_name_a_type_and_finds_its_first_resource() -> None:
    rm = manager()
    rm.register_resource("cpu_main", "cpu", 4)
    rm.register_resource("cpu_spare", "cpu", 4)
    assert rm.allocate_resources("a", {"cpu": {"cores": 2}}) == {"cpu": "cpu_main"}
    assert rm.get_usage("cpu_main").current == {"cores": 2.0}
    assert rm.get_usage("cpu_spare").current == {"cores": 0.0}


def test_empty_requirement_means_one_of_the_first_unit() -> None:
    rm = manager()
    rm.register_resource("deploy_lock", "lock")
    rm.allocate_resources("a", {"deploy_lock": {}})
    assert rm.get_usage("deploy_lock").current == {"units": 1.0}


def test_enforce_is_a_flag_and_sets_the_memory_limit() -> None:
    rm = manager()
    rm.register_resource("memory", "memory", 16)
    requirements = {"memory": {"gb": 2, "enforce": True}}
    rm.allocate_resources("a", requirements)
    assert rm.get_usage("memory").current == {"gb": 2.0}
    assert rm.memory_limit_bytes(requirements) == 2 * GB
    assert rm.memory_limit_bytes({"memory": {"mb": 512, "enforce": True}}) == 512 * 1024**2
    assert rm.memory_limit_bytes({"memory": {"gb": 2}}) is None
    assert rm.memory_limit_bytes(None) is None


def test_memory_limit_works_without_a_registered_memory_resource() -> None:
    assert manager().memory_limit_bytes({"memory": {"gb": 1, "enforce": True}}) == GB


def test_megabytes_are_converted_to_gigabytes() -> None:
    rm = manager()
    rm.register_resource("memory", "memory", 1)
    rm.allocate_resources("a", {"memory": {"mb": 256}})
    assert rm.get_usage("memory").current == {"gb": 0.25}


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        ({"cpx": {"cores": 1}}, "unknown resource 'cpx' (did you mean 'cpu'?)"),
        ({"cpu": {"cores": 7}}, "exceeds the 6 it can ever grant"),
        ({"cpu": {"cores": 4}, "cpu_pool": {"cores": 3}}, "exceeds the 6"),
        ({"cpu": {"threads": 1}}, "has no unit 'threads'"),
        ({"cpu": {"cores": -1}}, "at least 0"),
        ({"cpu": {"cores": "two"}}, "at least 0"),
        ({"cpu": {"cores": 1, "enforce": True}}, "applies only to memory"),
        ({"cpu": {"enforce": "yes"}}, "true or false"),
        ({"cpu": ["cores"]}, "must map units to amounts"),
    ],
)
def test_requirement_problem_explains_impossible_requirements(requirements: dict, expected: str) -> None:
    rm = manager()
    rm.register_resource("cpu_pool", "cpu", 4, ResourceLimits(burst_capacity=0.5))
    problem = rm.requirement_problem(requirements)
    assert problem is not None and expected in problem
    with pytest.raises(ResourceAllocationError):
        rm.try_allocate_requirements("a", requirements)


def test_requirement_problem_is_none_for_requirements_that_fit_some_day() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 4)
    rm.allocate_resources("hog", {"cpu": {"cores": 4}})
    assert rm.requirement_problem({"cpu": {"cores": 4}}) is None


# ------------------------------------------------------------------ allocation


def test_allocate_and_release_track_current_peak_and_available() -> None:
    rm = manager()
    rm.register_resource("db", "database", 5)
    first = rm.allocate("db", "a", {"connections": 2})
    second = rm.allocate("db", "b", 3)
    usage = rm.get_usage("db")
    assert (usage.current, usage.peak, usage.available, usage.users) == (
        {"connections": 5.0}, {"connections": 5.0}, {"connections": 0.0}, 2
    )
    assert isinstance(first, ResourceAllocation) and first.amount == {"connections": 2.0}
    assert rm.release(second.id) is True
    usage = rm.get_usage("db")
    assert (usage.current, usage.peak, usage.available, usage.users) == (
        {"connections": 2.0}, {"connections": 5.0}, {"connections": 3.0}, 1
    )
    assert rm.release(second.id) is False


def test_allocate_without_wait_raises_a_clear_error_when_full() -> None:
    rm = manager()
    rm.register_resource("db", "database", 1)
    rm.allocate("db", "a")
    with pytest.raises(ResourceAllocationError, match=r"resource 'db' could not grant 1 connections to 'b'"):
        rm.allocate("db", "b")


def test_allocate_unknown_resource_raises() -> None:
    with pytest.raises(ResourceAllocationError, match="unknown resource 'gpu'"):
        manager().allocate("gpu", "a")


def test_burst_capacity_is_a_hard_ceiling() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 4, ResourceLimits(burst_capacity=0.5))
    assert rm.allocate_resources("a", {"cpu": {"cores": 5}}) is not None
    assert rm.allocate_resources("b", {"cpu": {"cores": 1}}) is not None
    assert rm.allocate_resources("c", {"cpu": {"cores": 0.5}}) is None
    assert rm.get_usage("cpu").current == {"cores": 6.0}


def test_max_concurrent_users_counts_distinct_requesters() -> None:
    rm = manager()
    rm.register_resource("api", "external_api", {"requests": 10}, ResourceLimits(max_concurrent_users=2))
    assert rm.allocate_resources("a", {"api": {"requests": 1}})
    assert rm.allocate_resources("b", {"api": {"requests": 1}})
    assert rm.allocate_resources("c", {"api": {"requests": 1}}) is None
    assert rm.allocate_resources("a", {"api": {"requests": 1}}) is not None  # a holder may take more
    assert rm.check_availability("api", 1) is False


def test_allocate_resources_is_all_or_nothing() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 4)
    rm.register_resource("deploy_lock", "lock")
    events: list[str] = []
    rm.add_allocation_listener(lambda event, allocation: events.append(event))
    rm.allocate_resources("holder", {"deploy_lock": {}})
    events.clear()
    assert rm.allocate_resources("task", {"cpu": {"cores": 2}, "deploy_lock": {}}) is None
    assert rm.get_usage("cpu").current == {"cores": 0.0}
    assert rm.get_allocations("task") == [] and events == []


def test_two_keys_naming_one_resource_must_fit_together() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 4)
    rm.allocate_resources("hog", {"cpu": {"cores": 1}})
    # "CPU" is the type's name, so both keys mean the same resource.
    assert rm.allocate_resources("a", {"cpu": 2, "CPU": 2}) is None
    assert rm.get_usage("cpu").current == {"cores": 1.0}
    assert rm.allocate_resources("a", {"cpu": 1.5, "CPU": 1.5}) == {"cpu": "cpu", "CPU": "cpu"}


def test_deallocate_resources_by_user_by_allocation_id_and_by_resource_id() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 8)
    rm.register_resource("db", "database", 8)
    assert rm.deallocate_resources("nobody") is False
    rm.allocate_resources("u", {"cpu": 1, "db": 1})
    cpu_grant = next(a for a in rm.get_allocations("u") if a.resource_id == "cpu")
    assert rm.deallocate_resources("u", [cpu_grant.id]) is True
    assert rm.deallocate_resources("u", ["db"]) is True
    assert rm.get_allocations("u") == []
    rm.allocate_resources("u", {"cpu": 1, "db": 1})
    assert rm.deallocate_resources("u", ["cpu", "not-mine"]) is False  # cpu released, the rest unknown
    assert [a.resource_id for a in rm.get_allocations("u")] == ["db"]
    assert rm.deallocate_resources("u") is True
    assert rm.snapshot()[0].current == {"cores": 0.0}


def test_fractional_amounts_return_to_exactly_zero() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 1)
    grants = [rm.allocate("cpu", f"u{i}", 0.1) for i in range(10)]
    assert rm.allocate_resources("x", {"cpu": 0.1}) is None
    for grant in grants:
        rm.release(grant.id)
    assert rm.get_usage("cpu").current == {"cores": 0.0}


def test_check_availability() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 2)
    assert rm.check_availability("cpu", 2) and rm.check_availability("cpu", {"cores": 1})
    rm.allocate("cpu", "a", 1.5)
    assert rm.check_availability("cpu", 0.5) and not rm.check_availability("cpu", 1)
    assert rm.check_availability("gpu") is False


def test_status_follows_the_grants() -> None:
    rm = manager()
    cpu = rm.register_resource("cpu", "cpu", 2)
    assert cpu.status is ResourceStatus.AVAILABLE
    grant = rm.allocate("cpu", "a", 1)
    assert cpu.status is ResourceStatus.ALLOCATED
    rm.allocate("cpu", "b", 1)
    assert cpu.status is ResourceStatus.EXHAUSTED
    rm.release(grant.id)
    rm.deallocate_resources("b")
    assert cpu.status is ResourceStatus.AVAILABLE and cpu.allocated == {}


def test_a_resource_in_maintenance_grants_nothing() -> None:
    rm = manager()
    rm.add_resource(Resource(id="db", type=ResourceType.DATABASE, capacity={"connections": 3}, status=ResourceStatus.MAINTENANCE))
    assert rm.allocate_resources("a", {"db": {}}) is None


# ------------------------------------------------------------------- listeners


def test_listeners_run_after_the_lock_is_dropped() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 2)
    reentered: list[bool] = []

    def listener(*_: object) -> None:
        # Another thread must be able to take the manager's lock while a listener runs.
        _, done, _ = in_thread(rm.snapshot)
        reentered.append(done.wait(HANDSHAKE))

    rm.add_allocation_listener(listener)
    rm.add_release_listener(listener)
    rm.allocate_resources("a", {"cpu": 1})
    rm.deallocate_resources("a")
    assert reentered == [True, True, True]  # allocated, released, release listener


def test_allocation_listener_sees_allocated_and_released() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 2)
    seen: list[tuple[str, str]] = []
    rm.add_allocation_listener(lambda event, allocation: seen.append((event, allocation.resource_id)))
    grant = rm.allocate("cpu", "a", 1)
    rm.release(grant.id)
    assert seen == [("allocated", "cpu"), ("released", "cpu")]


def test_removed_listeners_are_not_called_again() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 2)
    seen: list[str] = []

    def on_allocation(event: str, allocation: ResourceAllocation) -> None:
        seen.append(event)

    def on_release() -> None:
        seen.append("release listener")

    rm.add_allocation_listener(on_allocation)
    rm.add_release_listener(on_release)
    rm.remove_allocation_listener(on_allocation)
    rm.remove_release_listener(on_release)
    rm.remove_release_listener(on_release)  # unknown callbacks are ignored
    grant = rm.allocate("cpu", "a", 1)
    rm.release(grant.id)
    assert seen == []


def test_a_failing_listener_does_not_break_release() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 1)
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("listener bug")

    rm.add_release_listener(broken)
    grant = rm.allocate("cpu", "a")
    assert rm.release(grant.id) is True
    assert calls == [1] and rm.check_availability("cpu", 1)


# --------------------------------------------------------------------- waiting


def test_a_blocked_allocation_is_woken_by_a_release() -> None:
    rm = manager()
    rm.register_resource("deploy_lock", "lock")
    rm.allocate_resources("holder", {"deploy_lock": {}})
    # The wait would last 600 s if nothing woke it; the handshake allows 10.
    _, done, box = in_thread(lambda: rm.allocate_resources("waiter", {"deploy_lock": {}}, timeout=600))
    assert wait_until(lambda: rm.get_resource_usage()["waiting"] == 1)
    assert not done.is_set()
    assert rm.deallocate_resources("holder") is True
    assert done.wait(HANDSHAKE)
    assert box == [{"deploy_lock": "deploy_lock"}]
    assert rm.get_usage("deploy_lock").users == 1


def test_a_blocked_allocation_gives_up_when_its_timeout_passes() -> None:
    clock = ManualClock()
    rm = manager(clock)
    rm.register_resource("deploy_lock", "lock")
    rm.allocate_resources("holder", {"deploy_lock": {}})
    _, done, box = in_thread(lambda: rm.allocate_resources("waiter", {"deploy_lock": {}}, timeout=5))
    assert wait_until(lambda: rm.get_resource_usage()["waiting"] == 1)
    clock.advance(4)
    assert wait_until(lambda: rm.get_resource_usage()["waiting"] == 1) and not done.is_set()
    clock.advance(2)
    assert done.wait(HANDSHAKE)
    assert box == [None]


def test_blocking_allocate_raises_when_the_timeout_passes() -> None:
    clock = ManualClock()
    rm = manager(clock)
    rm.register_resource("gpu", "gpu", 1)
    rm.allocate("gpu", "holder")
    _, done, box = in_thread(lambda: rm.allocate("gpu", "waiter", timeout=1))
    assert wait_until(lambda: rm.get_resource_usage()["waiting"] == 1)
    clock.advance(1)
    assert done.wait(HANDSHAKE)
    assert isinstance(box[0], ResourceAllocationError) and "within 1 s" in box[0].message


# ---------------------------------------------------------------------- expiry


def test_expired_allocations_are_reclaimed_and_reported() -> None:
    clock = ManualClock()
    rm = manager(clock)
    rm.register_resource("db", "database", 2, ResourceLimits(max_allocation_time=30))
    events: list[tuple[str, str]] = []
    released: list[int] = []
    rm.add_allocation_listener(lambda event, allocation: events.append((event, allocation.id)))
    rm.add_release_listener(lambda: released.append(1))
    grant = rm.allocate("db", "a")
    assert grant.expires_at == pytest.approx(clock.time() + 30)
    clock.advance(29)
    assert rm.reclaim_expired() == []
    clock.advance(2)
    assert [a.id for a in rm.reclaim_expired()] == [grant.id]
    assert events == [("allocated", grant.id), ("expired", grant.id)] and released == [1]
    assert rm.get_usage("db").current == {"connections": 0.0}
    assert rm.release(grant.id) is False


def test_an_explicit_duration_shortens_the_limit() -> None:
    clock = ManualClock()
    rm = manager(clock)
    rm.register_resource("db", "database", 2, ResourceLimits(max_allocation_time=30))
    short = rm.allocate("db", "a", duration=5)
    rm.allocate_resources("b", {"db": {}}, duration=100)  # capped at 30 by the limit
    clock.advance(6)
    assert [a.id for a in rm.reclaim_expired()] == [short.id]
    clock.advance(25)
    assert [a.requester_id for a in rm.reclaim_expired()] == ["b"]


def test_allocation_reclaims_expired_grants_on_the_way() -> None:
    clock = ManualClock()
    rm = manager(clock)
    rm.register_resource("deploy_lock", "lock")
    rm.allocate_resources("stale", {"deploy_lock": {}}, duration=10)
    assert rm.allocate_resources("next", {"deploy_lock": {}}) is None
    clock.advance(10)
    assert rm.allocate_resources("next", {"deploy_lock": {}}) == {"deploy_lock": "deploy_lock"}
    assert rm.get_allocations("stale") == []


def test_a_waiter_gets_a_grant_reclaimed_when_the_clock_moves() -> None:
    clock = ManualClock()
    rm = manager(clock)
    rm.register_resource("deploy_lock", "lock")
    rm.allocate_resources("stale", {"deploy_lock": {}}, duration=10)
    _, done, box = in_thread(lambda: rm.allocate_resources("waiter", {"deploy_lock": {}}, timeout=100))
    assert wait_until(lambda: rm.get_resource_usage()["waiting"] == 1)
    clock.advance(11)
    assert done.wait(HANDSHAKE)
    assert box == [{"deploy_lock": "deploy_lock"}]


# ------------------------------------------------------------------ monitoring


def test_system_wide_usage_includes_the_machines_live_load() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 2)
    rm.allocate_resources("a", {"cpu": 1})
    usage = rm.get_resource_usage()
    assert (usage["total_resources"], usage["active_allocations"], usage["users"], usage["waiting"]) == (1, 1, 1, 0)
    assert usage["resources"]["cpu"]["utilization"] == {"cores": 50.0}
    assert 0.0 <= usage["system"]["cpu_percent"] and 0.0 < usage["system"]["memory_percent"] <= 100.0
    one = rm.get_resource_usage("cpu")
    assert one["current"] == {"cores": 1.0} and one["type"] == "cpu" and one["status"] == "allocated"
    with pytest.raises(ResourceAllocationError, match="unknown resource"):
        rm.get_resource_usage("gpu")


def test_monitor_yields_until_the_stop_event_is_set() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 2)
    stop = threading.Event()
    monitor = rm.monitor_resources(interval=0.01, stop_event=stop)
    first = next(monitor)
    second = next(monitor)
    assert "cpu" in first["resources"] and second["timestamp"] >= first["timestamp"]
    stop.set()
    assert list(monitor) == []


def test_monitor_reclaims_expired_allocations() -> None:
    clock = ManualClock()
    rm = manager(clock)
    rm.register_resource("cpu", "cpu", 2)
    rm.allocate("cpu", "a", 2, duration=1)
    clock.advance(2)
    stop = threading.Event()
    assert next(rm.monitor_resources(0.01, stop))["active_allocations"] == 0


def test_snapshot_lists_every_resource_in_order() -> None:
    rm = manager()
    rm.register_resource("cpu", "cpu", 2)
    rm.register_resource("deploy_lock", "lock")
    rm.allocate_resources("a", {"deploy_lock": {}})
    snapshot = rm.snapshot()
    assert [u.resource_id for u in snapshot] == ["cpu", "deploy_lock"]
    assert snapshot[1].current == {"units": 1.0} and snapshot[1].users == 1


# ----------------------------------------------------------------- concurrency

POOL_CEILING = {"units": 6.0, "gb": 12.0}  # capacity {units: 4, gb: 8} with burst 0.5
POOL_USERS = 3
CEILINGS = {"pool": POOL_CEILING, "lock": {"units": 1.0}}
USERS = {"pool": POOL_USERS, "lock": 1}


def concurrency_manager(clock: ManualClock | None = None) -> ResourceManager:
    rm = manager(clock)
    rm.register_resource("pool", "custom", {"units": 4, "gb": 8}, ResourceLimits(max_concurrent_users=3, burst_capacity=0.5))
    rm.register_resource("lock", "lock")
    return rm


halves = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5, 5.0])
requirement = st.one_of(
    st.fixed_dictionaries({"pool": st.fixed_dictionaries({"units": halves, "gb": halves})}),
    st.just({"lock": {}}),
    st.fixed_dictionaries({"pool": st.fixed_dictionaries({"units": halves}), "lock": st.just({})}),
)


class AllocationModel(RuleBasedStateMachine):
    """The manager must grant exactly what a plain ledger says fits, and expire on time."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.rm = concurrency_manager(self.clock)
        # allocation id -> (user, resource, amount, deadline or None)
        self.held: dict[str, tuple[str, str, dict[str, float], float | None]] = {}

    def in_use(self, resource: str) -> dict[str, float]:
        used = dict.fromkeys(CEILINGS[resource], 0.0)
        for _, where, amount, _ in self.held.values():
            if where == resource:
                for unit, value in amount.items():
                    used[unit] += value
        return used

    def holders(self, resource: str) -> set[str]:
        return {user for user, where, _, _ in self.held.values() if where == resource}

    def expected_fit(self, user: str, requirements: dict) -> bool:
        for resource, spec in requirements.items():
            amount = spec or {"units": 1.0}
            used = self.in_use(resource)
            if any(used[unit] + value > CEILINGS[resource][unit] for unit, value in amount.items()):
                return False
            if user not in self.holders(resource) and len(self.holders(resource)) >= USERS[resource]:
                return False
        return True

    @rule(user=st.sampled_from("abcde"), requirements=requirement, duration=st.sampled_from([None, 5.0, 20.0]))
    def allocate(self, user: str, requirements: dict, duration: float | None) -> None:
        expected = self.expected_fit(user, requirements)
        before = {a.id for a in self.rm.get_allocations(user)}
        granted = self.rm.allocate_resources(user, requirements, duration=duration)
        assert (granted is not None) == expected
        if granted is not None:
            deadline = None if duration is None else self.clock.monotonic() + duration
            for allocation in self.rm.get_allocations(user):
                if allocation.id not in before:
                    self.held[allocation.id] = (user, allocation.resource_id, allocation.amount, deadline)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def release_one(self, data: st.DataObject) -> None:
        # Draw a position, not an id: ids are random, so drawing one would not replay.
        allocation_id = list(self.held)[data.draw(st.integers(0, len(self.held) - 1))]
        assert self.rm.release(allocation_id) is True
        del self.held[allocation_id]
        assert self.rm.release(allocation_id) is False

    @rule(user=st.sampled_from("abcde"))
    def release_user(self, user: str) -> None:
        mine = [a for a, (owner, *_rest) in self.held.items() if owner == user]
        assert self.rm.deallocate_resources(user) is bool(mine)
        for allocation_id in mine:
            del self.held[allocation_id]

    @rule(seconds=st.sampled_from([1.0, 6.0, 15.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        now = self.clock.monotonic()
        expired = {a for a, (*_rest, deadline) in self.held.items() if deadline is not None and deadline <= now}
        assert {a.id for a in self.rm.reclaim_expired()} == expired
        for allocation_id in expired:
            del self.held[allocation_id]

    @invariant()
    def usage_matches_the_ledger_and_stays_under_the_ceiling(self) -> None:
        for usage in self.rm.snapshot():
            assert usage.current == self.in_use(usage.resource_id)
            assert usage.users == len(self.holders(usage.resource_id)) <= USERS[usage.resource_id]
            assert all(usage.current[u] <= CEILINGS[usage.resource_id][u] for u in usage.current)

    def teardown(self) -> None:
        for user in "abcde":
            self.rm.deallocate_resources(user)
        assert all(set(u.current.values()) == {0.0} and u.users == 0 for u in self.rm.snapshot())
        assert self.rm.get_allocations() == []


TestAllocationModel = AllocationModel.TestCase
TestAllocationModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def hammer(rm: ResourceManager, plans: list[list[tuple[dict, bool]]]) -> list[str]:
    """Run one thread per plan; each grants, books in a ledger, unbooks, releases.

    Returns every invariant violation seen: the ledger (what threads believe they
    hold, booked after a grant and unbooked before its release) over a ceiling or
    over the user limit, and the manager's own figures over a ceiling at any instant.
    """
    ledger_lock = threading.Lock()
    ledger: dict[str, dict[str, float]] = {r: dict.fromkeys(c, 0.0) for r, c in CEILINGS.items()}
    ledger_users: dict[str, set[str]] = {r: set() for r in CEILINGS}
    problems: list[str] = []
    start = threading.Barrier(len(plans) + 2)  # workers, observer, this thread
    finished = threading.Event()
    hold = threading.Event()  # never set: waiting on it is a short pause

    def book(user: str, requirements: dict, sign: float) -> None:
        with ledger_lock:
            for resource, spec in requirements.items():
                for unit, value in (spec or {"units": 1.0}).items():
                    ledger[resource][unit] = round(ledger[resource][unit] + sign * value, 9)
                    if ledger[resource][unit] > CEILINGS[resource][unit]:
                        problems.append(f"ledger {resource}.{unit}={ledger[resource][unit]}")
                (ledger_users[resource].add if sign > 0 else ledger_users[resource].discard)(user)
                if len(ledger_users[resource]) > USERS[resource]:
                    problems.append(f"ledger {resource} users={sorted(ledger_users[resource])}")

    def worker(index: int, plan: list[tuple[dict, bool]]) -> None:
        start.wait()
        for step, (requirements, block) in enumerate(plan):
            user = f"t{index}-{step}"
            # A blocking wait is short: a grant may legitimately not come in time.
            granted = rm.allocate_resources(user, requirements, timeout=0.02 if block else None)
            if granted is None:
                continue
            book(user, requirements, +1)
            # Hold the grant a moment so other threads compete while it is held.
            hold.wait(0.001)
            book(user, requirements, -1)
            if not rm.deallocate_resources(user):
                problems.append(f"{user} could not release its grant")

    def observer() -> None:
        start.wait()
        while not finished.is_set():
            for usage in rm.snapshot():
                if any(usage.current[u] > CEILINGS[usage.resource_id][u] for u in usage.current):
                    problems.append(f"manager {usage.resource_id} current={usage.current}")
                if usage.users > USERS[usage.resource_id]:
                    problems.append(f"manager {usage.resource_id} users={usage.users}")

    threads = [threading.Thread(target=worker, args=(i, plan), daemon=True) for i, plan in enumerate(plans)]
    watcher = threading.Thread(target=observer, daemon=True)
    for thread in [*threads, watcher]:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(60)
    finished.set()
    watcher.join(60)
    return problems


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=st.lists(st.lists(st.tuples(requirement, st.booleans()), min_size=5, max_size=25), min_size=8, max_size=8))
def test_eight_threads_never_over_allocate_and_never_leak(plans: list[list[tuple[dict, bool]]]) -> None:
    rm = concurrency_manager()
    released = []
    rm.add_release_listener(lambda: released.append(1))
    assert hammer(rm, plans) == []
    assert rm.get_allocations() == []
    usage = rm.get_resource_usage()
    assert usage["active_allocations"] == 0 and usage["users"] == 0 and usage["waiting"] == 0
    for one in rm.snapshot():
        assert set(one.current.values()) == {0.0} and one.users == 0
        assert all(one.peak[u] <= CEILINGS[one.resource_id][u] for u in one.peak)


def test_eight_threads_contending_for_one_lock_never_share_it() -> None:
    rm = concurrency_manager()
    assert hammer(rm, [[({"lock": {}}, True)] * 20 for _ in range(8)]) == []
    usage = rm.get_usage("lock")
    assert usage.peak == {"units": 1.0} and usage.current == {"units": 0.0}
