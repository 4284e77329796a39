"""Trials as Dask tasks: ``executor="dask://host:8786"`` or a ``distributed.Client``.

Each running trial is one Dask future, waited on by one local thread (its slot), so the study
still records every result itself and alone writes the store. GPU trials ask Dask for the
worker resource ``GPU`` (start workers with ``--resources GPU=1``, one worker per GPU as
dask-cuda does); ``per_gpu=K`` asks for ``1/K`` of a GPU so K trials share one. A worker that
dies mid-trial has its task re-run elsewhere by the scheduler (up to its ``allowed-failures``);
past that the trial is FAIL with "worker died". Either way it is recorded exactly once. The
scattered objective may end up on one worker alone (Dask's memory manager drops extra copies):
should that worker die, Dask drops the trial's task with it, and the trial is sent once more.
Reports travel live through a scheduler queue named after the task, and a prune or Stop goes
back through a scheduler event of the same name (``runner.relay_reports``).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError
from typing import Any
from urllib.parse import urlparse

from . import workers
from ._execute import may_report
from ._warn import warn_at_user
from .devices import GpuSpec, PerGpu, check_per_gpu
from .runner import Shown, ThreadRunner, lost_trial, relay_reports, replay_reports
from .trial import PruneHook, Trial

GPU = "GPU"  # the Dask worker resource name GPU workers declare
WAIT_FOR_WORKERS_S = 60.0


class ClusterError(ConnectionError):
    """The Dask scheduler named by ``executor`` cannot be reached, or no worker joins it."""


def connect(executor: Any) -> tuple[Any, bool]:
    """(client, whether we created it and so must close it)."""
    if not isinstance(executor, str):
        return executor, False
    try:
        from distributed import Client
    except ImportError as error:
        raise ImportError("executor='dask://...' needs Dask: pip install 'hpwidgets[dask]'") from error
    address = scheduler_address(executor)
    if address.startswith("tls://") and not tls_configured():
        raise ClusterError(no_certificates(executor))
    try:
        return Client(address, set_as_default=False), True
    except (OSError, ValueError) as error:  # Dask's connect timeout is an OSError; a bad address a ValueError
        raise ClusterError(f"cannot reach the Dask scheduler at {executor!r} ({error}); start one with "
                           f"`dask scheduler` and a worker with `dask worker {address}`") from None
    except TypeError:  # Dask's word for a TLS address without certificates, should the check above miss one
        if not address.startswith("tls://"):
            raise
        raise ClusterError(no_certificates(executor)) from None


def tls_configured() -> bool:
    """Whether Dask's configuration gives a Client made from a string the certificates TLS needs.
    Checked before making one: without them its constructor fails deep inside (a TypeError) and
    leaves the half-made Client's event loop thread running."""
    import dask
    from distributed.security import Security
    if dask.config.get("distributed.client.security-loader", None):
        return True  # the loader's answer is only known by calling it: the Client will
    try:
        return Security().get_connection_args("client")["ssl_context"] is not None
    except Exception:  # an unreadable certificate file: the Client reports it in its own words
        return True


def no_certificates(executor: str) -> str:
    return (f"cannot connect to the Dask scheduler at {executor!r}: a TLS address needs certificates, and "
            f"Dask's configuration names none; pass a distributed.Client made with security=... as the "
            f"executor, or set distributed.comm.tls.ca-file, .client.cert and .client.key in Dask's configuration")


def scheduler_address(executor: str) -> str:
    """Dask's own address for ``executor``: ``dask://host:port`` is ``tcp://host:port``."""
    return "tcp://" + executor[len("dask://"):] if executor.startswith("dask://") else executor


def wait_for_a_worker(client: Any, owned: bool) -> None:
    """A scheduler with no workers would queue every trial forever: wait a while, then say so."""
    if client.nthreads():
        return
    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except TimeoutError:  # Dask's WorkerStartTimeoutError is one
        address = client.scheduler.address
        if owned:
            client.close()
        raise ClusterError(f"the Dask scheduler at {address} has no workers after {WAIT_FOR_WORKERS_S:g} s; "
                           f"start one with `dask worker {address}`") from None


def cluster_gpus(client: Any) -> float:
    """Total ``GPU`` resource the cluster's workers declare."""
    info = client.scheduler_info(n_workers=-1)
    return float(sum(w.get("resources", {}).get(GPU, 0) for w in info["workers"].values()))


def threads_by_host(nthreads: Mapping[str, int]) -> dict[str, int]:
    """Dask threads per host, so a trial can take its share of that host's cores."""
    hosts: dict[str, int] = {}
    for address, n in nthreads.items():
        host = urlparse(address).hostname or address
        hosts[host] = hosts.get(host, 0) + int(n)
    return hosts


def dask_trial(payload: bytes, number: int, params: Mapping[str, Any], device: str, target: str | None,
               hosts: Mapping[str, int], channel: str | None = None) -> dict[str, Any]:
    """Runs on a Dask worker: one trial with this host's share of torch threads; ``channel`` names
    the scheduler's queue and event that carry its reports out and a prune or Stop back."""
    from distributed import Event, Queue, get_worker
    host = urlparse(get_worker().address).hostname or ""
    threads = max(1, (os.cpu_count() or 1) // max(1, hosts.get(host, 1)))
    live = None if channel is None else (Queue(channel), Event(channel))
    return workers.remote_trial(payload, number, params, device, target, False, threads, live)


class DaskRunner(ThreadRunner):
    """Slots are Dask tasks in flight; capacity is the cluster's threads (or GPUs x per_gpu)."""

    def __init__(self, executor: Any, *, parallel: int = 1, gpus: GpuSpec = None, per_gpu: PerGpu = 1) -> None:
        check_per_gpu(per_gpu)
        self._executor = executor
        self._reconnect = False  # set once shutdown closed a Client of our own: a later run connects again
        self.client, self._owned = connect(executor)
        wait_for_a_worker(self.client, self._owned)
        self._hosts = threads_by_host(self.client.nthreads())
        self._gpus = cluster_gpus(self.client) if gpus is not None and gpus != [] else 0.0
        if gpus not in (None, [], "auto") and not self._gpus:
            warn_at_user(f"gpus={gpus!r} was asked for but no Dask worker declares a {GPU!r} resource "
                         f"(start workers with --resources {GPU}=1); running on CPU workers", RuntimeWarning)
        # "auto" cannot size from memory here: the scheduler, not us, picks each trial's GPU.
        self._per_gpu = 1 if per_gpu == "auto" else int(per_gpu)
        if self._gpus:
            capacity = {"cuda": max(1, int(self._gpus * self._per_gpu))}
        else:
            capacity = {"cpu": parallel if parallel > 1 else sum(self._hosts.values())}
        super().__init__(capacity)
        self._payloads: dict[int, tuple[Any, bytes, Any]] = {}  # id -> (objective, pickle, its Dask future)
        self._payload_lock = threading.Lock()

    def _resources(self) -> dict[str, float] | None:
        return {GPU: 1.0 / self._per_gpu} if self._gpus else None

    def _payload(self, call: Any) -> Any:
        """The pickled objective, scattered to every worker once (its data would otherwise travel
        with each task: ``_payload.py``); scattered again should the workers holding it be lost."""
        with self._payload_lock:
            if self._reconnect:  # the runner is used again (add_trials while a run ended, a reused runner)
                self.client, self._owned = connect(self._executor)
                self._reconnect = False
            call_kept, data, scattered = self._payloads.get(id(call), (call, None, None))
            if data is None:
                data = workers.dumps(call)
            if scattered is None or scattered.status != "finished":
                scattered = self.client.scatter(data, broadcast=True, hash=False)
            self._payloads[id(call)] = (call_kept, data, scattered)  # keep `call` alive: ids are reused
            return scattered

    def _drop_payload(self, call: Any, scattered: Any) -> None:
        """Scatter the objective again at its next use (unless another trial did already): its task
        is forgotten, and Dask may not yet say so of the scattered data."""
        with self._payload_lock:
            call_kept, data, now = self._payloads[id(call)]
            if now is scattered:
                self._payloads[id(call)] = (call_kept, data, None)

    def _run(self, call: Any, number: int, params: Mapping[str, Any], device: str, *, target: str | None,
             on_report: PruneHook | None, stopping: Callable[[], bool] | None, measure: bool) -> workers.Outcome:
        from distributed import KilledWorker
        shown = Shown()  # across sends: a task sent again repeats the reports already shown
        lost = ""
        for _send in range(2):
            payload = self._payload(call)
            try:
                outcome = self._send(call, payload, number, params, device, target, on_report, stopping, shown)
            except CancelledError as error:  # dropped with the objective's data, whose last worker died
                self._drop_payload(call, payload)
                lost = f"dask: the trial's task was dropped twice ({error})"
                continue
            except KilledWorker as error:
                return lost_trial(number, params, device, f"worker died: {error}")
            except Exception as error:  # a lost connection must not end the search
                return lost_trial(number, params, device, f"dask: {type(error).__name__}: {error}")
            replay_reports(outcome, params, on_report, skip=shown.count)
            return outcome
        return lost_trial(number, params, device, lost)

    def _send(self, call: Any, payload: Any, number: int, params: Mapping[str, Any], device: str,
              target: str | None, on_report: PruneHook | None, stopping: Callable[[], bool] | None,
              shown: Shown) -> workers.Outcome:
        """One Dask task for the trial, with its reports relayed live while it runs."""
        from distributed import Event, Queue
        key = f"hpwidgets-trial-{number}-{uuid.uuid4().hex[:8]}"
        live = may_report(call)  # an objective(params) never reports: no queue or event on the scheduler
        reports, halt = (Queue(key, client=self.client), Event(key, client=self.client)) if live else (None, None)
        future = self.client.submit(dask_trial, payload, number, dict(params), device, target, self._hosts,
                                    key if live else None, key=key, pure=False, resources=self._resources())
        try:
            # A retried task (its worker died) reports again into the same queue; ``shown`` lets
            # through only what goes past the dead attempt's reports.
            if live:
                relay_reports(future, lambda: reports.get(batch=True), halt.set,
                              Trial(number, params, device=device), on_report, stopping, shown)
            return workers.decode(future.result())
        finally:  # at once: a task the cluster still holds for us is computed again if its worker dies
            _release(future, reports, halt)

    def _learn(self, device: str, outcome: workers.Outcome) -> None:
        if outcome.out_of_memory and self._gpus and self._per_gpu > 1:
            self._per_gpu -= 1  # each later trial asks for a bigger share of a GPU
            self.pool.resize(device, max(1, int(self._gpus * self._per_gpu)))

    def shutdown(self) -> None:
        super().shutdown()
        with self._payload_lock:
            for _call, _data, scattered in self._payloads.values():
                if scattered is not None:  # None: dropped, and not scattered again yet
                    scattered.release()  # the workers may drop it
            self._payloads.clear()
        if self._owned:
            self.client.close()
            self._owned, self._reconnect = False, True


def _release(future: Any, reports: Any = None, halt: Any = None) -> None:
    """Drop a finished trial's task, queue and event from the scheduler (best effort: it may be gone)."""
    try:
        future.release()
        if reports is not None:
            reports.close()
            halt.clear()
    except Exception:  # a lost scheduler has nothing left to release
        pass
