"""The Dask executor backend: steps run on the workers of a Dask distributed cluster.

orchtui keeps scheduling, priorities, retries and the store; Dask only runs attempts.
Each attempt is one ``Client.submit`` of :func:`run_on_worker` whose only arguments are
the :class:`~core.models.Invocation` and its unique key
(``orchtui-<task id>-<attempt>-<random>``, also the Dask key), with ``pure=False``. A step's parameters
travel inside the Invocation, so they can never collide with ``Client.submit``'s own
keyword arguments (``key``, ``workers``, ``resources``, ``retries``...).

On the worker, :func:`core.actions.invoke` runs the attempt exactly as on a thread: it
enforces ``Invocation.timeout`` from the moment the worker starts the attempt and kills a
shell step's whole process tree on timeout or cancel.

Cancel
    Each running attempt registers a local ``threading.Event`` in a per-process table on
    its worker; :meth:`DaskBackend.cancel` reaches it with ``Client.run`` (out of band,
    no task slot needed), so ``invoke`` sees a plain local event and polls it for free.
    When no worker is running the attempt yet, a tombstone is left on every worker (an
    attempt that starts a moment later returns ``Cancelled`` at once) and the Dask future
    is cancelled, so a step waiting for a worker resource never starts. A running
    attempt reports its real result, after its process tree is gone. This costs nothing
    per attempt, unlike a ``distributed.Event`` per attempt, whose waits are scheduler
    round trips.

Resources
    A step's requirements (spec-002 dicts) map to Dask worker resources by
    :func:`dask_resources`: ``gpu: {units: n}`` becomes ``GPU: n`` and always restricts
    the step to workers that declare a GPU (the attempt fails at once when none does).
    Any other requirement except ``cpu`` and ``memory`` becomes the upper-cased name
    (``license: {units: 1}`` becomes ``LICENSE: 1``) when a worker of the cluster
    declares that resource, and is otherwise left to orchtui's ResourceManager alone.
    ``cpu`` is not a Dask resource (a worker thread is the CPU slot) and ``memory`` is
    enforced per step by ``RLIMIT_AS`` on the worker. Workers declare resources with
    ``dask worker --resources "GPU=1"``; a LocalCluster started here takes
    ``cluster_kwargs={"resources": {"GPU": 1}}`` (per worker).

Logs and outputs
    ``invoke`` writes the step's log to ``Invocation.log_path``. On a LocalCluster that
    is this machine's state directory. On remote workers the log file is written on the
    worker's filesystem unless the state directory is shared (NFS...), so the result also
    carries the last :data:`OUTPUT_TAIL_BYTES` of the log in
    ``TaskResult.metadata["output_tail"]`` and the worker's address in
    ``metadata["dask_worker"]``. Outputs come back as the result's ``data``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import distributed

from .config import load_settings
from .errors import OrchestrationError, ResourceAllocationError
from .executors import cancelled_result, crash_result
from .interfaces import DoneCallback
from .models import Invocation, TaskResult

__all__ = [
    "DaskBackend",
    "DaskAttempt",
    "dask_resources",
    "run_on_worker",
    "cancel_on_worker",
    "CONNECT_TIMEOUT",
    "OUTPUT_TAIL_BYTES",
]

CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler before giving up with a clear error
OUTPUT_TAIL_BYTES = 4096  # end of the step's log sent back in the result's metadata
INFO_MAX_AGE = 1.0  # seconds a cached view of the cluster's workers stays fresh
_NOT_DASK = frozenset({"cpu", "memory"})
_AMOUNT_KEYS = ("units", "count", "amount", "slots")
_TOMBSTONE_TTL = 600.0  # seconds a cancel waits on a worker for an attempt that never started

# ------------------------------------------------------------ worker side

# Per worker process: attempt key -> its cancel event; keys cancelled before they started.
_LIVE: dict[str, threading.Event] = {}
_TOMBSTONES: collections.OrderedDict[str, float] = collections.OrderedDict()
_WORKER_LOCK = threading.Lock()


def run_on_worker(invocation: Invocation, key: str) -> TaskResult:
    """Run one attempt on a Dask worker through :func:`core.actions.invoke`.

    The attempt's cancel event is registered under ``key`` so that
    :func:`cancel_on_worker` can reach it.

    Returns:
        The attempt's TaskResult (``invoke`` never raises for a failing action), with the
        log's tail and the worker's address added to its metadata.
    """
    from .actions import invoke  # the worker imports the action registry on first use

    cancel = threading.Event()
    with _WORKER_LOCK:
        cancelled_early = _TOMBSTONES.pop(key, None) is not None
        if not cancelled_early:
            _LIVE[key] = cancel
    if cancelled_early:
        return cancelled_result(invocation)
    try:
        result = invoke(invocation, cancel)
    except BaseException as exc:  # SystemExit from a python.call: one failed attempt, as on threads,
        result = crash_result(invocation, exc)  # not a dead worker that Dask retries on the next
    finally:
        with _WORKER_LOCK:
            _LIVE.pop(key, None)
    with contextlib.suppress(ValueError):  # ValueError: called outside a worker (direct use)
        result.metadata["dask_worker"] = distributed.get_worker().address
    tail = _log_tail(invocation.log_path)
    if tail:
        result.metadata["output_tail"] = tail
    return result


def cancel_on_worker(key: str) -> bool:
    """Cancel attempt ``key`` if this worker process runs it; else leave a tombstone.

    Runs on the worker's event loop through ``Client.run``; it only sets an event.

    Returns:
        True when the attempt was running here (it will report ``Cancelled`` itself).
    """
    now = time.monotonic()
    with _WORKER_LOCK:
        event = _LIVE.get(key)
        if event is not None:
            event.set()
            return True
        _TOMBSTONES[key] = now
        while _TOMBSTONES:
            oldest_key, stamp = next(iter(_TOMBSTONES.items()))
            if now - stamp < _TOMBSTONE_TTL:
                break
            del _TOMBSTONES[oldest_key]
    return False


def _log_tail(log_path: str | None) -> str:
    """Return the last :data:`OUTPUT_TAIL_BYTES` of the log file (empty when there is none)."""
    if not log_path:
        return ""
    try:
        with Path(log_path).open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - OUTPUT_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


# ----------------------------------------------------------- resource map


def _amount(spec: Mapping[str, Any]) -> float:
    for name in _AMOUNT_KEYS:
        value = spec.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 1.0


def dask_resources(
    requirements: Mapping[str, Mapping[str, Any]] | None, offered: Mapping[str, float]
) -> dict[str, float]:
    """Return the Dask resource restrictions of a step's requirements.

    ``gpu`` always maps to ``GPU`` (amount ``units``, default 1); ``cpu`` and ``memory``
    never map; any other requirement maps to its upper-cased name (amount ``units``,
    ``count``, ``amount`` or ``slots``, default 1) only when ``offered`` has it.

    Args:
        requirements: the step's resource requirements (spec-002 dicts).
        offered: the largest amount of each resource any worker of the cluster declares.

    Returns:
        ``{DASK_NAME: amount}``, empty when Dask need not restrict the step.

    Raises:
        ResourceAllocationError: a mapped resource is declared by no worker, or in a
            smaller amount than the step needs, so the step could never start.
    """
    restrictions: dict[str, float] = {}
    for name, spec in (requirements or {}).items():
        key = str(name).lower()
        if key in _NOT_DASK:
            continue
        dask_name = key.upper()
        if key != "gpu" and dask_name not in offered:
            continue
        amount = _amount(spec or {})
        if amount <= 0:
            continue
        available = offered.get(dask_name, 0.0)
        if available < amount:
            raise ResourceAllocationError(
                f"no Dask worker offers {dask_name}={amount:g} (largest: {available:g}); start workers with "
                f"`dask worker --resources \"{dask_name}={amount:g}\"` or drop the step's {name} requirement"
            )
        restrictions[dask_name] = amount
    return restrictions


# ---------------------------------------------------------------- backend


class DaskAttempt:
    """One submitted attempt, as :class:`DaskBackend` tracks it (the ``submit`` handle)."""

    __slots__ = ("invocation", "on_done", "key", "future", "reported", "cancel_requested")

    def __init__(self, invocation: Invocation, on_done: DoneCallback, key: str) -> None:
        self.invocation = invocation
        self.on_done = on_done
        self.key = key
        self.future: distributed.Future | None = None
        self.reported = False
        self.cancel_requested = False


class DaskBackend:
    """Runs invocations on a Dask distributed cluster (implements ExecutorBackend).

    Args:
        max_workers: workers of the LocalCluster started when there is no scheduler
            (one thread each); ignored with a scheduler or a client, whose cluster's
            worker threads make the :attr:`capacity`.
        scheduler: address of a running scheduler (``tcp://HOST:8786``). None uses
            ``Settings.dask_scheduler`` (``ORCHTUI_DASK_SCHEDULER``) unless
            ``cluster_kwargs`` is given, and starts a LocalCluster when there is none.
        client: an existing ``distributed.Client`` to use (not closed by shutdown).
        cluster_kwargs: arguments for the LocalCluster, over the defaults
            ``n_workers=max_workers, threads_per_worker=1, processes=True,
            dashboard_address=None``; e.g. ``processes=False`` for tests or
            ``resources={"GPU": 1}`` (per worker).
        connect_timeout: seconds to reach ``scheduler`` before failing.

    Raises:
        OrchestrationError: the scheduler cannot be reached, both ``scheduler`` and
            ``client`` were given, or the LocalCluster could not start.
    """

    name = "dask"

    def __init__(
        self,
        max_workers: int = 4,
        *,
        scheduler: str | None = None,
        client: distributed.Client | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        if client is not None and scheduler is not None:
            raise OrchestrationError("give the dask backend a scheduler address or a client, not both")
        self._cluster: distributed.LocalCluster | None = None
        self._owns_client = client is None
        if client is None:
            if scheduler is None and cluster_kwargs is None:
                scheduler = load_settings().dask_scheduler
            client = self._connect(scheduler, max_workers, cluster_kwargs, connect_timeout)
        self._client: distributed.Client = client
        self.scheduler_address: str = client.scheduler.address
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._live: set[DaskAttempt] = set()
        self._closed = False
        self._info_at = -INFO_MAX_AGE
        self._workers: list[dict[str, Any]] = []
        self._done: collections.deque[DaskAttempt] = collections.deque()
        self._done_ready = threading.Event()
        self._stopping = False
        self._collector = threading.Thread(target=self._collect, name="orchtui-dask-results", daemon=True)
        self._collector.start()
        # Cancels make blocking calls (Client.run, Future.cancel): keep them off the dispatcher.
        self._control = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="orchtui-dask-cancel")
        self._refresh_workers()

    def _connect(
        self, scheduler: str | None, max_workers: int, cluster_kwargs: Mapping[str, Any] | None, timeout: float
    ) -> distributed.Client:
        if scheduler:
            _check_scheduler_address(scheduler)
            try:
                return distributed.Client(scheduler, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise OrchestrationError(
                    f"cannot reach the Dask scheduler at {scheduler} within {timeout:g}s: start it, or drop "
                    "--scheduler (and ORCHTUI_DASK_SCHEDULER) to run on a local cluster",
                    error_code="DASK_SCHEDULER_UNREACHABLE",
                    details={"scheduler": scheduler, "reason": str(exc)},
                ) from None
        options: dict[str, Any] = {
            "n_workers": max(1, int(max_workers)),
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
        options.update(cluster_kwargs or {})
        try:
            self._cluster = distributed.LocalCluster(**options)
            return distributed.Client(self._cluster, set_as_default=False)
        except (OSError, TimeoutError, TypeError, ValueError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise OrchestrationError(
                f"could not start a local Dask cluster ({type(exc).__name__}: {exc}); check cluster options "
                "or give --scheduler",
                error_code="BACKEND_UNAVAILABLE",
            ) from None

    # ------------------------------------------------------------ reading

    @property
    def client(self) -> distributed.Client:
        """The ``distributed.Client`` attempts are submitted through."""
        return self._client

    @property
    def capacity(self) -> int | None:
        """Worker threads in the cluster (refreshed at most every second), at least 1."""
        return max(1, sum(int(w["nthreads"]) for w in self.workers()))

    def workers(self, max_age: float = INFO_MAX_AGE) -> list[dict[str, Any]]:
        """Return the cluster's workers for the dashboard's gauges.

        Each is ``{"address", "name", "nthreads", "memory" (bytes in use),
        "memory_limit" (bytes, 0: none), "executing" (attempts assigned to it),
        "resources" ({NAME: amount})}``. The answer is cached for ``max_age`` seconds
        so that a dashboard polling at 10 Hz costs the scheduler one call a second.
        """
        if time.monotonic() - self._info_at > max_age:
            self._refresh_workers()
        return self._workers

    def _refresh_workers(self) -> None:
        try:
            # Ask the scheduler itself: Client.scheduler_info() returns the client's shared
            # summary, which its own timer overwrites with one that lists no worker.
            info = self._client.sync(self._client.scheduler.identity, n_workers=-1)
            processing = self._client.processing()
        except Exception:  # keep the last view: the scheduler may be restarting or gone
            return
        rows = []
        for address, worker in sorted(info.get("workers", {}).items()):
            metrics = worker.get("metrics") or {}
            rows.append({
                "address": address,
                "name": str(worker.get("name", address)),
                "nthreads": int(worker.get("nthreads", 0)),
                "memory": int(metrics.get("memory", 0) or 0),
                "memory_limit": int(worker.get("memory_limit", 0) or 0),
                "executing": len(processing.get(address, ())),
                "resources": {str(k): float(v) for k, v in (worker.get("resources") or {}).items()},
            })
        self._workers = rows
        self._info_at = time.monotonic()

    def _offered(self, wanted: Mapping[str, Any]) -> dict[str, float]:
        """Largest amount of each resource a worker declares (re-read when a name is unknown)."""
        names = {str(n).upper() for n in wanted if str(n).lower() not in _NOT_DASK}
        offered = _largest(self._workers)
        if not names.issubset(offered):
            offered = _largest(self.workers())
        return offered

    # ------------------------------------------------------------- submit

    def submit(self, invocation: Invocation, on_done: DoneCallback) -> DaskAttempt:
        """Submit ``invocation`` to the cluster; ``on_done(result)`` is called once later.

        ``on_done`` runs on this backend's result thread (or, when the attempt is refused
        at once, on the caller's).

        Returns:
            The attempt handle, to pass to :meth:`cancel`.
        """
        key = f"orchtui-{invocation.task_id}-{invocation.attempt}-{uuid.uuid4().hex[:12]}"
        attempt = DaskAttempt(invocation, on_done, key)
        # Invocation.resources carries the step's requirements once the dispatcher sets it.
        requirements = getattr(invocation, "resources", None) or {}
        try:
            restrictions = dask_resources(requirements, self._offered(requirements)) if requirements else {}
        except ResourceAllocationError as exc:
            self._report(attempt, TaskResult(
                success=False, error_message=exc.message, error_type=type(exc).__name__, attempt=invocation.attempt))
            return attempt
        with self._lock:
            closed = self._closed
            if not closed:
                self._live.add(attempt)
        if closed:
            self._report(attempt, cancelled_result(invocation, "the executor was shut down before the task started"))
            return attempt
        try:
            future = self._client.submit(
                run_on_worker, invocation, attempt.key,
                key=attempt.key, pure=False, resources=restrictions or None,
            )
        except Exception as exc:  # e.g. the client lost its scheduler: fail this attempt, not the caller
            self._report(attempt, TaskResult(
                success=False, error_type=type(exc).__name__, attempt=invocation.attempt,
                error_message=f"the Dask cluster refused {invocation.task_name}: {exc}"))
            return attempt
        attempt.future = future
        future.add_done_callback(lambda _future: self._finished(attempt))
        return attempt

    def _finished(self, attempt: DaskAttempt) -> None:
        # Runs on Dask's callback thread: hand over and return, never wait here.
        self._done.append(attempt)
        self._done_ready.set()

    def _collect(self) -> None:
        """Result thread: fetch finished attempts' results in batches and report them."""
        while True:
            self._done_ready.wait()
            self._done_ready.clear()
            stopping = self._stopping
            batch: list[DaskAttempt] = []
            while self._done:
                batch.append(self._done.popleft())
            if batch:
                self._report_batch(batch)
            if stopping:
                return

    def _report_batch(self, batch: list[DaskAttempt]) -> None:
        finished = [a for a in batch if a.future is not None and a.future.status == "finished"]
        if finished:
            try:
                results = self._client.gather([a.future for a in finished])
            except Exception:  # one bad result must not lose the others: fetch them one by one
                results = None
            if results is not None:
                for attempt, result in zip(finished, results):
                    self._report(attempt, result)
        for attempt in batch:
            if not attempt.reported:
                self._report(attempt, self._outcome(attempt))

    def _outcome(self, attempt: DaskAttempt) -> TaskResult:
        """The result of one attempt whose future ended (fetched on its own)."""
        invocation = attempt.invocation
        future = attempt.future
        problem: BaseException
        try:
            if future is not None and future.status == "finished":
                return future.result()
            if future is not None and future.status == "error":
                problem = future.exception() or RuntimeError("the task failed without an exception")
            else:
                problem = RuntimeError("the Dask scheduler dropped the task (it lost its workers or this client)")
        except Exception as exc:  # the result could not be fetched (worker gone, unpicklable output)
            problem = exc
        if attempt.cancel_requested:
            return cancelled_result(invocation, "cancelled")
        return TaskResult(
            success=False,
            error_message=f"{invocation.task_name} failed on the Dask cluster: {type(problem).__name__}: {problem}",
            error_type=type(problem).__name__,
            attempt=invocation.attempt,
        )

    def _report(self, attempt: DaskAttempt, result: TaskResult) -> None:
        """Call the attempt's ``on_done`` unless it was already called (exactly once)."""
        with self._lock:
            if attempt.reported:
                return
            attempt.reported = True
            self._live.discard(attempt)
            if not self._live:
                self._idle.notify_all()
        future, attempt.future = attempt.future, None
        if future is not None:
            with contextlib.suppress(Exception):  # releasing a key the scheduler already forgot
                future.release()
        attempt.on_done(result)

    # ------------------------------------------------------------- cancel

    def cancel(self, handle: DaskAttempt) -> None:
        """Ask the attempt to stop; idempotent and never blocks the caller.

        A running attempt's process tree is killed on its worker and it reports
        ``Cancelled`` when that is done; one that has not started is dropped.
        """
        with self._lock:
            if handle.reported or handle.cancel_requested:
                return
            handle.cancel_requested = True
        with contextlib.suppress(RuntimeError):  # the control thread is gone: shutdown reports it
            self._control.submit(self._cancel_now, handle)

    def _cancel_now(self, attempt: DaskAttempt) -> None:
        future = attempt.future
        if future is None or future.done():
            return
        try:
            replies = self._client.run(cancel_on_worker, attempt.key, on_error="return")
        except Exception:  # no worker answered: dropping the future is all that is left
            replies = {}
        if not any(reply is True for reply in replies.values()):
            with contextlib.suppress(Exception):
                future.cancel()

    # ----------------------------------------------------------- shutdown

    def shutdown(self, wait: bool = True, *, timeout: float | None = None) -> None:
        """Stop: cancel live attempts, report the rest as cancelled, close client and cluster.

        Args:
            wait: wait (up to ``timeout``) for cancelled running attempts to report, so
                their process trees are gone before a LocalCluster's workers stop.
            timeout: seconds to wait for live attempts (None: as long as it takes).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            live = list(self._live)
        for attempt in live:
            self.cancel(attempt)
        if not wait:
            threading.Thread(target=self._close, args=(timeout,), name="orchtui-dask-close", daemon=True).start()
            return
        self._close(timeout)

    def _close(self, timeout: float | None) -> None:
        with self._lock:
            self._idle.wait_for(lambda: not self._live, timeout)
            left = list(self._live)
        for attempt in left:
            self._report(attempt, cancelled_result(attempt.invocation, "cancelled: the executor shut down"))
        self._control.shutdown(wait=True, cancel_futures=True)
        self._stopping = True
        self._done_ready.set()
        self._collector.join()
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close()

    def __enter__(self) -> DaskBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)



def _largest(workers: list[dict[str, Any]]) -> dict[str, float]:
    offered: dict[str, float] = {}
    for worker in workers:
        for name, amount in worker["resources"].items():
            offered[name] = max(offered.get(name, 0.0), amount)
    return offered


def _check_scheduler_address(address: str) -> None:
    """Return None when ``address`` can name a Dask scheduler.

    Checked before a ``Client`` is made: one made for a malformed address fails, and its
    finaliser then waits 10 s to close and prints a traceback.

    Raises:
        OrchestrationError: the scheme is unknown, or a host or port is missing.
    """
    from distributed.comm import get_address_host_port

    try:
        get_address_host_port(address)
    except ValueError as exc:
        if "know how to extract" in str(exc):  # a scheme without host and port (inproc, ucx)
            return
        raise OrchestrationError(
            f"the Dask scheduler address {address!r} is not valid ({exc}); write it as tcp://HOST:PORT",
            error_code="DASK_SCHEDULER_ADDRESS", details={"scheduler": address},
        ) from None
