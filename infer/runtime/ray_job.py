"""`infer run --ray`: the batch job on a Ray cluster, scenes handed out one at a time to whichever worker is free.

Each worker is a Ray actor that loads the ONNX model once (one per GPU with
`--device cuda`, else one per `--ray-cpus` CPUs) and runs scenes with the same
per-scene rules as a plain run (`infer.runtime.job.SceneJob`): claimed before
they run, skipped when done, written whole, recorded in one merged
`summary.json` with the worker that did each. The driver keeps every worker
busy with the next scene, so fast workers take more. A worker that dies
mid-scene (killed, out of memory, its node lost) is restarted by Ray and its
scene handed out again, to it or to another; the dead process's claim went
with it and its partial files are removed by whoever does the scene next, so
each scene's outputs appear once and whole.

The output folder must be one file system every node sees (the claims are
`flock`s, which NFS v4 and the usual cluster file systems carry across nodes).
Ray is an optional extra (`pip install 'sitewatch[ray]'`); it is imported
only here.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from infer.errors import UsageError
from infer.runtime.decoder import available_cores
from infer.runtime.job import SceneJob, SceneOutcome
from infer.runtime.model import OnnxModel
from infer.runtime.options import RunOptions
from infer.runtime.runfolder import update_summary

#: Times a scene is handed out again after the worker running it died, before it is recorded as failed.
SCENE_ATTEMPTS = 3
#: Restarts Ray gives one worker before it is given up.
WORKER_RESTARTS = 3


@dataclass(frozen=True)
class RayPlan:
    """Where and how wide a Ray job runs. `address`: None starts a local cluster, "auto" joins the one this
    machine belongs to, else a cluster's address; `workers`: None = one per GPU (cuda) or per `cpus` CPUs."""

    address: str | None
    workers: int | None
    cpus: int


class SceneWorker:
    """One Ray worker (made an actor by `run_on_ray`): a model loaded once, then scenes one at a time."""

    def __init__(self, model: str, device: str, threads: int, engine_cache: str | None, out: str,
                 options: RunOptions, summary: str) -> None:
        self.job = SceneJob(OnnxModel(model, device=device, threads=threads,
                                      engine_cache=Path(engine_cache) if engine_cache else None),
                            Path(out), options, Path(summary))

    def run(self, scene: str) -> tuple[str, dict[str, Any] | None]:
        """(status, summary entry) of one scene; another job's claim on it is waited for."""
        outcome = self.job.claimed(Path(scene), wait=True)
        return outcome.status, outcome.entry

    def ready(self) -> bool:
        """True once the worker is up (its model loaded): what the driver waits for after a restart."""
        return True


def run_on_ray(model: Path, device: str, engine_cache: Path | None, scenes: list[Path], out: Path,
               options: RunOptions, summary: Path, plan: RayPlan, progress: bool) -> list[SceneOutcome]:
    """Every scene through a pool of `SceneWorker`s on a Ray cluster; the outcomes, one per scene."""
    try:
        import ray
    except ModuleNotFoundError:
        raise UsageError("--ray needs Ray: pip install 'sitewatch[ray]'") from None
    logging.getLogger("ray").setLevel(logging.ERROR)  # its start-up notices are not the job's output
    _connect(ray, plan)
    try:
        workers = _start_workers(ray, model, device, engine_cache, out, options, summary, plan)
        return _hand_out(ray, workers, scenes, summary, progress)
    finally:
        ray.shutdown()


def _connect(ray, plan: RayPlan) -> None:
    """A local cluster started, or the one at `plan.address` joined; `UsageError` in one line if not.

    Joining, Ray's native client retries for minutes and writes a warning a second to stderr, also at an
    address where another service answers (a head's dashboard, 8265, given for its GCS). So an
    address that is not a GCS is told at once (`_not_a_gcs`), and what Ray writes while joining is shown
    only if it joins.
    """
    if plan.address is None:
        ray.init(num_cpus=available_cores(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        return
    if (problem := _not_a_gcs(plan.address)) is not None:
        raise UsageError(f"cannot join the Ray cluster at {plan.address}: {problem}")
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        stderr = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            ray.init(address=plan.address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"cannot join the Ray cluster at {plan.address}: {first[:300]}") from None
        finally:
            os.dup2(stderr, 2)
            os.close(stderr)
        held.seek(0)
        sys.stderr.write(held.read().decode(errors="replace"))


#: What a client sends first on an HTTP/2 connection (RFC 9113, 3.4): the preface and an empty SETTINGS frame.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
#: The type of an HTTP/2 SETTINGS frame, a server's first (byte 3 of a frame's header).
HTTP2_SETTINGS = 4


def _not_a_gcs(address: str, timeout_s: float = 10.0) -> str | None:
    """Why a head's `host:port` is not its GCS, or None when it may be (or the address is not of that form,
    such as "auto", which Ray resolves itself; `ray://HOST:PORT`, a Ray Client server, is probed alike):
    nothing answers there, or what answers does not speak gRPC's HTTP/2 (a GCS answers the client's preface
    with its SETTINGS frame)."""
    host, _, port = address.partition("://")[2].rpartition(":") if "://" in address else address.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            connection.sendall(HTTP2_PREFACE)
            header = connection.recv(9)
    except TimeoutError:
        header = b""
    except OSError as exc:
        return f"nothing answers at {address} ({exc.strerror or type(exc).__name__})"
    if len(header) < 4 or header[3] != HTTP2_SETTINGS:
        return (f"what answers at {address} is not a Ray GCS (it does not speak gRPC); give the head's GCS "
                "address, HOST:6379 unless `ray start --head --port` set another (`ray status` on the head "
                "shows it), not its dashboard's (8265)")
    return None


def _start_workers(ray, model: Path, device: str, engine_cache: Path | None, out: Path, options: RunOptions,
                   summary: Path, plan: RayPlan) -> list:
    resources = ray.cluster_resources()
    if device == "cuda":
        slots, need = int(resources.get("GPU", 0)), {"num_gpus": 1, "num_cpus": 1}
        if slots < 1:
            raise UsageError("--device cuda: the Ray cluster has no GPU")
    else:
        slots, need = int(resources.get("CPU", 0) // plan.cpus), {"num_cpus": plan.cpus}
        if slots < 1:
            raise UsageError(f"--ray-cpus {plan.cpus}: the Ray cluster has {resources.get('CPU', 0):g} CPUs")
    count = plan.workers or slots
    actor = ray.remote(max_restarts=WORKER_RESTARTS, max_task_retries=0, **need)(SceneWorker)
    return [actor.remote(str(model), device, plan.cpus, str(engine_cache) if engine_cache else None, str(out),
                         options, str(summary)) for _ in range(count)]


def _hand_out(ray, workers: list, scenes: list[Path], summary: Path, progress: bool) -> list[SceneOutcome]:
    """Keep every worker busy with the next scene; a scene whose worker died goes back in the queue.

    A dead worker gets no scene until Ray has restarted it: a call made while it restarts fails at once
    (`ActorUnavailableError`), without running, and would count as another death of the scene's worker.
    So it is asked `ready` first, a call Ray holds until the new process is up, and is idle from then on.
    """
    from ray.exceptions import RayActorError

    queue, attempts = deque(scenes), dict.fromkeys(scenes, 0)
    running: dict[Any, tuple[Any, Path]] = {}
    restarting: dict[Any, Any] = {}  # a dead worker's `ready` call: the worker
    idle, deaths = deque(workers), dict.fromkeys(range(len(workers)), 0)
    index = {id(w): k for k, w in enumerate(workers)}
    outcomes: list[SceneOutcome] = []
    megapixels, started = 0.0, time.perf_counter()
    bar = tqdm(total=len(scenes), desc="scenes", unit="scene", disable=not progress)
    while queue or running:
        while queue and idle:
            worker, scene = idle.popleft(), queue.popleft()
            running[worker.run.remote(str(scene))] = (worker, scene)
        if not running and not restarting:  # every worker is gone for good
            lost = {str(s): {"scene": str(s), "status": "failed", "error": "no Ray worker left to run it"}
                    for s in queue}
            update_summary(summary, lost)
            outcomes += [SceneOutcome(Path(k), "failed", e) for k, e in lost.items()]
            break
        (ref,), _ = ray.wait([*running, *restarting], num_returns=1)
        if ref in restarting:
            worker = restarting.pop(ref)
            try:
                ray.get(ref)
            except RayActorError:
                continue  # it did not come back: Ray gave it up
            idle.append(worker)
            continue
        worker, scene = running.pop(ref)
        try:
            status, entry = ray.get(ref)
        except RayActorError:
            attempts[scene] += 1
            deaths[index[id(worker)]] += 1
            if deaths[index[id(worker)]] <= WORKER_RESTARTS:
                restarting[worker.ready.options(max_task_retries=-1).remote()] = worker
            if attempts[scene] < SCENE_ATTEMPTS:
                queue.appendleft(scene)
                continue
            status, entry = "failed", {"scene": str(scene), "status": "failed",
                                       "error": f"its Ray worker died {SCENE_ATTEMPTS} times (out of memory?)"}
            update_summary(summary, {str(scene): entry})
        else:
            idle.append(worker)
        outcomes.append(SceneOutcome(scene, status, entry))
        megapixels += (entry or {}).get("megapixels", 0.0) if status == "done" else 0.0
        bar.set_postfix_str(f"{megapixels:,.0f} Mpx, {megapixels / max(time.perf_counter() - started, 1e-9):.1f} Mpx/s")
        bar.update()
    bar.close()
    return outcomes


def validate_plan(address: str | None, workers: int | None, cpus: int) -> RayPlan:
    """The `--ray` options checked before any work (`UsageError` for a bad one)."""
    if workers is not None and workers < 1:
        raise UsageError(f"--ray-workers must be at least 1, got {workers}")
    if cpus < 1:
        raise UsageError(f"--ray-cpus must be at least 1, got {cpus}")
    return RayPlan(None if address in (None, "local") else address, workers, cpus)


__all__ = ["RayPlan", "SceneWorker", "run_on_ray", "validate_plan"]
