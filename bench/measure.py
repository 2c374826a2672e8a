"""Timing, percentiles and the server-side view: CPU time and RSS of a whole process tree.

CPU time is read from psutil for the service's master and every descendant (gunicorn/uvicorn
workers); it is steadier than wall time on a shared machine because other tenants' load stretches
wall time but not the CPU a request consumes.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pids: list[int]) -> float:
    """user+system CPU seconds of every process under each of `pids` (processes that vanish count 0)."""
    total = 0.0
    for pid in pids:
        for proc in tree(pid):
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                continue
    return total


def wait_until_quiet(
    pids: list[int], window: float = 0.1, quiet_share: float = 0.1, limit: float = 3.0
) -> None:
    """Wait (at most `limit` s) until the trees under `pids` use under `quiet_share` of a core over one
    `window`, so a sample does not pay for the work the sample before it left behind on the 2 shared cores
    (`mlflow server` frees its ~2.7 GB download buffer for ~0.3 s of CPU after its last byte is sent)."""
    deadline = time.monotonic() + limit
    before = tree_cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = tree_cpu_seconds(pids)
        if now - before < quiet_share * window:
            return
        before = now


def tree_rss_bytes(pids: list[int]) -> int:
    """Sum of RSS over the trees (forked workers' shared pages count in each, as `ps` shows them)."""
    return rss_bytes([proc for pid in pids for proc in tree(pid)])


def rss_bytes(procs: list[psutil.Process]) -> int:
    """Sum of RSS over already-found processes (ones that exited count 0)."""
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class RssSampler:
    """Peak tree RSS while a block runs, sampled every `interval` seconds in a thread.

    The trees are walked once at the start, at the end and every `rewalk` samples; the samples in
    between read the RSS of the processes found. A walk scans every process on the machine (~1.4 ms of
    CPU with ~90 of them), and the sampler runs in the measuring client's process on the 2 shared cores,
    only for the servers whose memory is watched: walking every 50 ms took ~14 ms of CPU per 200 MB
    download from the proxy's side alone (the direct-to-S3 side has no sampler), a few % of its speed.
    """

    pids: list[int]
    interval: float = 0.05
    rewalk: int = 20
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        procs = self._walk()
        self.peak = rss_bytes(procs)
        thread = threading.Thread(target=self._loop, args=(procs,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, tree_rss_bytes(self.pids))

    def _walk(self) -> list[psutil.Process]:
        return [proc for pid in self.pids for proc in tree(pid)]

    def _loop(self, procs: list[psutil.Process]) -> None:
        n = 0
        while not self._stop.wait(self.interval):
            n += 1
            if n % self.rewalk == 0:  # a worker started meanwhile (a restart) is found within a second
                procs = self._walk()
            self.peak = max(self.peak, rss_bytes(procs))


@dataclass
class Sample:
    """One timed run of a workload on one server."""

    wall: float
    cpu: float
    count: int
    latencies: list[float] = field(default_factory=list)


def timed(pids: list[int], count: int, fn: Callable[[], list[float] | None]) -> Sample:
    """Run `fn` once, measuring wall time and the server trees' CPU; `fn` may return latencies."""
    cpu0 = tree_cpu_seconds(pids)
    t0 = time.perf_counter()
    latencies = fn() or []
    wall = time.perf_counter() - t0
    cpu = tree_cpu_seconds(pids) - cpu0
    return Sample(wall=wall, cpu=cpu, count=count, latencies=latencies)


def run_threads(n: int, worker: Callable[[int], list[float] | None]) -> list[float]:
    """Run `worker(i)` in `n` threads started together; first exception is re-raised; latencies merged."""
    results: list[list[float]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = worker(i) or []
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [x for r in results for x in r]


def connections_per_process(pids: list[int], port: int) -> list[int]:
    """Established client connections on `port` held by each process of the trees (non-zero only).

    Keep-alive connections stay with the worker that accepted them, so this shows whether N clients
    actually spread over the workers or all landed on one."""
    counts = []
    for pid in pids:
        for proc in tree(pid):
            try:
                held = sum(
                    1
                    for c in proc.net_connections("tcp")
                    if c.status == "ESTABLISHED" and c.laddr.port == port
                )
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if held:
                counts.append(held)
    return sorted(counts, reverse=True)


# ---- a request's CPU, server and database apart (schedstat) ---------------------------------------
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process (a worker's thread pool runs the sync routes)."""
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def _reaped_ns(pid: int) -> int:
    """CPU time of the children `pid` has waited for (cutime + cstime, clock ticks): PostgreSQL's
    parallel workers live for one query, and this is where their time ends up."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return (int(fields[13]) + int(fields[14])) * _TICK_NS


def _tree(pid: int) -> list[int]:
    try:
        root = psutil.Process(pid)
        return [pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


class ServerCpu:
    """CPU time of a service's processes and of PostgreSQL's (every backend, the parallel workers a
    query started and ended, the background processes, which are idle but for noise)."""

    def __init__(self, service_pid: int, postmaster_pid: int) -> None:
        self.service_pid = service_pid
        self.postmaster_pid = postmaster_pid
        self._service = _tree(service_pid)

    def _sum(self, pids: list[int]) -> int:
        return sum(_cpu_ns(pid) for pid in pids)

    @contextmanager
    def measure(self, out: list[tuple[int, int]]) -> Iterator[None]:
        """Appends (service ns, PostgreSQL ns) spent inside the block."""
        database = _tree(self.postmaster_pid)
        service0, database0 = self._sum(self._service), {pid: _cpu_ns(pid) for pid in database}
        reaped = _reaped_ns(self.postmaster_pid)
        yield
        service = self._sum(self._service) - service0
        after = {pid: _cpu_ns(pid) for pid in {*database, *_tree(self.postmaster_pid)}}
        live = sum(ns - database0.get(pid, 0) for pid, ns in after.items() if ns)
        # A process that ended inside the window counts through its parent's reaped time.
        gone = sum(database0[pid] for pid in database if after.get(pid, 0) == 0)
        out.append((service, live + _reaped_ns(self.postmaster_pid) - reaped - gone))

    def refresh(self) -> None:
        """The service's processes again (a worker that restarted)."""
        self._service = _tree(self.service_pid)
