"""Transcription on a Ray cluster: ``python -m indexer transcribe|ingest --ray [ADDRESS]``.

The driver (the process that runs the command) does everything but recognition, exactly as
the single-process path does it (``pipeline.run_batch``): probing, metadata, the ledger, and
writing every transcript. Only the jobs a run still needs go to the cluster, to a pool of
actors that each load the model once (one CPU each, or a share of a GPU on GPU nodes) and
decode and transcribe one decoding group (``pipeline.decoding_groups``: the same groups as in
one process, so the same transcripts) per call. So a re-run skips what the ledger says is done,
and a transcript is written once, by the one process that owns the output folder.

A worker process that dies mid-job (killed, out of memory, its node gone) is restarted by Ray
and its unfinished calls are sent again (``max_restarts`` / ``max_task_retries``); a group
whose worker died every time is sent again one recording per call, so a recording that kills
its worker every time fails alone after the retries, with a line that says so.
Recordings must be readable at the same path on every node (a shared folder), and the model
directory must exist at the same path on every node (docs/asr.md, "A Ray cluster").
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from indexer.asr.pipeline import Job, Outcome, Transcriber, decoding_groups, transcribe_jobs
from indexer.errors import AsrModelError
from indexer.settings import Settings

# How often Ray brings a dead recognition worker back, and resends the calls it had.
WORKER_RESTARTS = 3
# Calls queued on each worker beyond the one it runs, so it never waits for the driver.
QUEUED_PER_WORKER = 1


def _seconds(group: Sequence[Job]) -> float:
    return sum(job.probe.duration_s or 0.0 for job in group)


@dataclass(frozen=True)
class WorkerShape:
    """What one recognition worker asks the cluster for."""

    count: int
    cpus: float
    gpus: float  # 0 on a CPU-only cluster

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"


def worker_shape(
    resources: dict[str, float],
    settings: Settings,
    workers: int | None = None,
    gpu_share: float | None = None,
) -> WorkerShape:
    """How many workers, and their size, for a cluster with these total ``resources``.

    GPUs (unless ``asr_device`` is ``cpu``): ``gpu_share`` of one GPU each (default a whole
    one), as many as fit. Otherwise one CPU each, one per CPU of the cluster.
    """
    gpus = resources.get("GPU", 0.0) if settings.asr_device != "cpu" else 0.0
    if settings.asr_device == "cuda" and not gpus:
        raise AsrModelError("asr_device is 'cuda' but the Ray cluster has no GPU")
    if gpus:
        share = gpu_share or 1.0
        fits = max(1, int(gpus / share + 1e-9))
        return WorkerShape(min(workers or fits, fits), cpus=1.0, gpus=share)
    fits = max(1, int(resources.get("CPU", 1.0)))
    return WorkerShape(min(workers or fits, fits), cpus=1.0, gpus=0.0)


class _Recognizer:
    """One model, loaded once per worker process; Ray creates it with ``ray.remote``."""

    def __init__(self, settings: Settings, hotwords: Mapping[str, str]) -> None:
        self.error: str | None = None
        self.transcriber: Transcriber | None = None
        try:
            self.transcriber = Transcriber.from_settings(settings, hotwords)
        except AsrModelError as exc:
            self.error = str(exc)  # said by ready(): the driver ends the run, not N failures

    def ready(self) -> str | None:
        return self.error

    def transcribe(self, jobs: list[Job]) -> list[Outcome]:
        return transcribe_jobs(self._loaded, jobs)

    def _loaded(self) -> Transcriber:
        if self.transcriber is None:
            raise AsrModelError(self.error or "the model is not loaded")
        return self.transcriber


class RayRunner:
    """A ``pipeline.JobRunner`` that sends jobs to recognition workers on a Ray cluster.

    Connects on first use: to ``address`` (``ray start --head`` prints it), or, when it is
    empty, to the cluster ``RAY_ADDRESS`` names, else to a new one on this machine. Workers are
    started on the first call that has jobs, so a re-run with nothing to do loads no model.
    """

    def __init__(
        self,
        settings: Settings,
        address: str | None = None,
        *,
        workers: int | None = None,
        gpu_share: float | None = None,
        hotwords: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        # The vocabulary's terms by language, offered to the model as in one process.
        self.hotwords = dict(hotwords or {})
        self.address = address or None
        self.requested_workers = workers
        self.gpu_share = gpu_share
        self.shape: WorkerShape | None = None
        self._actors: list[Any] = []
        self._connected_here = False

    def __enter__(self) -> RayRunner:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect and start the workers, waiting until each has loaded its model."""
        if self._actors:
            return
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
            self._connected_here = True
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        shape = worker_shape(resources, self.settings, self.requested_workers, self.gpu_share)
        recognizer = ray.remote(
            num_cpus=shape.cpus,
            num_gpus=shape.gpus,
            max_restarts=WORKER_RESTARTS,
            max_task_retries=WORKER_RESTARTS,
        )(_Recognizer)
        worker_settings = self.settings.model_copy(
            update={"asr_device": shape.device, "asr_threads": int(shape.cpus)}
        )
        self._actors = [
            recognizer.remote(worker_settings, self.hotwords) for _ in range(shape.count)
        ]
        self.shape = shape
        errors = [e for e in ray.get([a.ready.remote() for a in self._actors]) if e]
        if errors:
            self.close()
            raise AsrModelError(errors[0])

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
        if self._connected_here:
            ray.shutdown()
            self._connected_here = False

    def __call__(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, Outcome]]:
        if not jobs:
            return
        self.start()
        # Longest first: with a long call last, one worker would run it while the others sat
        # idle until the job ended.
        waiting = deque(
            sorted(decoding_groups(jobs, self.settings.asr_group_s), key=_seconds, reverse=True)
        )
        running: dict[Any, tuple[list[Job], int]] = {}  # ObjectRef → (group, its worker)
        load = dict.fromkeys(range(len(self._actors)), 0)  # calls sent, by live worker

        def fill() -> None:
            # Breadth first: every worker gets a call before any gets one queued behind it.
            for limit in range(1, QUEUED_PER_WORKER + 2):
                for index in list(load):
                    if waiting and load[index] < limit:
                        group = waiting.popleft()
                        running[self._actors[index].transcribe.remote(group)] = (group, index)
                        load[index] += 1

        fill()
        while running:
            [ref], _ = ray.wait(list(running), num_returns=1)
            group, index = running.pop(ref)
            outcomes: list[Outcome]
            try:
                outcomes = ray.get(ref)
            except RayActorError as exc:
                load.pop(index, None)  # restarted WORKER_RESTARTS times already: gone for good
                if len(group) > 1:  # which recording killed it? each alone, on the others
                    waiting.extendleft([job] for job in reversed(group))
                    fill()
                    continue
                outcomes = [
                    f"{group[0].probe.path}: its Ray worker died {WORKER_RESTARTS + 1} times "
                    f"while transcribing it ({type(exc).__name__})"
                ]
            except RayTaskError as exc:
                if isinstance(exc.cause, AsrModelError):
                    raise exc.cause from None
                outcomes = [
                    f"{job.probe.path}: unexpected {type(exc.cause).__name__}: {exc.cause}"
                    for job in group
                ]
            if index in load:
                load[index] -= 1
            yield from zip(group, outcomes, strict=True)
            fill()
        for group in waiting:  # every worker is gone for good
            for job in group:
                yield job, f"{job.probe.path}: not transcribed, no Ray worker is left"
