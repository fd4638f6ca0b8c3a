"""Fleet evaluation: many bags on Ray, merged into one report (``anomaly-seg fleet evaluate``).

The driver (this module) starts or joins a Ray cluster, creates one actor per worker
(:class:`~anomaly_seg_ros.evaluation.fleet_worker.BagWorker`: the model is shipped through
the object store as bytes and loaded once per actor), and runs two passes over the bags:

1. every bag's mergeable state (pixel scores or histograms, object-level counts, per-frame
   AP); merged on the driver, they give the pixel metrics over all frames and so the
   best-F1 threshold at which the SMIYC component metrics are taken;
2. every bag's component state at that threshold, and the gallery panels of the fleet's
   worst and best frames.

The merged figures equal those of one ``anomaly-seg bag evaluate`` over the same frames:
the exact pixel metrics come from the sorted scores (frame order does not matter); object
and component figures are counts and means over the frames in bag-name order, then bag
order, which is also the frame order of one bag recorded in that order.

Nothing is lost: a bag that fails (unreadable, missing topic, no ground truth, frames in
an encoding the decoder refuses, a worker killed under it) is listed with its reason and
the others go on; the report says ``N of M bags evaluated``. Each bag's results are cached
(:mod:`~anomaly_seg_ros.evaluation.fleet_inputs`) as soon as they arrive, so a rerun after
a kill evaluates only the bags not yet done. Ray is imported here only, inside functions:
it is a dependency of this tool, never of the node.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.evaluation.component_metrics import ComponentEvaluator
from anomaly_seg_ros.evaluation.dataset_evaluation import EvaluationResult, ScoreResult
from anomaly_seg_ros.evaluation.factory import create_pixel_evaluator
from anomaly_seg_ros.evaluation.fleet_inputs import ResultCache, cache_key
from anomaly_seg_ros.evaluation.fleet_report import FleetResult, write_fleet_report
from anomaly_seg_ros.evaluation.fleet_worker import (
    MASK_CLASSES,
    BagDetails,
    BagFailure,
    BagState,
    BagWorker,
    FleetSettings,
    ModelPackage,
)
from anomaly_seg_ros.evaluation.object_metrics import ObjectEvaluator
from anomaly_seg_ros.evaluation.pixel_metrics import PixelEvaluator
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator

LOGGER = logging.getLogger(__name__)

#: The Ray release the tool is tested with (requirements.txt pins it).
RAY_REQUIREMENT = "ray==2.60.0"
#: A replaced worker per this many bags at most, so a bag that kills every worker it
#: meets cannot loop.
MAX_REPLACEMENTS = 8


def import_ray() -> Any:
    """The ``ray`` module.

    :raises ConfigError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError as error:
        raise ConfigError(
            f"fleet evaluation needs Ray: .venv/bin/pip install '{RAY_REQUIREMENT}'"
        ) from error
    return ray


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast when nothing listens at a Ray address (``host:port`` or ``ray://…``).

    :raises InputError: the host does not resolve or refuses / ignores the connection.
    """
    if address == "auto":
        return
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":")
    if not host:
        host, port = text, "10001" if address.startswith("ray://") else "6379"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as error:
        raise InputError(
            f"cannot reach the Ray cluster at {address}: {error}; start one with "
            "`ray start --head` (see docs/fleet.md) or leave out --address for a local one"
        ) from error


def start_ray(address: str | None, workers: int | None) -> tuple[Any, bool]:
    """Join the cluster at ``address``, or start a local one with ``workers`` CPUs.

    An already initialised Ray (a test's cluster, a notebook's) is used as it is.

    :return: (the ray module, whether this call started it and must shut it down).
    :raises ConfigError: Ray is missing.
    :raises InputError: the address is unreachable.
    """
    ray = import_ray()
    if address:
        check_reachable(address)
    if ray.is_initialized():
        return ray, False
    if address:
        package = Path(__file__).resolve().parents[1]
        try:
            # The package travels with the job; its dependencies must be on the workers.
            ray.init(
                address=address,
                runtime_env={"py_modules": [str(package)]},
                log_to_driver=False,
            )
        except (ConnectionError, RuntimeError) as error:
            raise InputError(f"cannot join the Ray cluster at {address}: {error}") from error
    else:
        cpus = workers or os.cpu_count() or 1
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    return ray, True


def _reason(error: BaseException) -> str:
    """One line for a worker that died or a task that raised."""
    line = str(error).strip().splitlines()
    return f"{type(error).__name__}: {line[-1] if line else ''}"[:300]


class _Pool:
    """Ray actors running :class:`BagWorker`; replaces the ones that die."""

    def __init__(
        self,
        ray: Any,
        count: int,
        settings: FleetSettings,
        model: ModelPackage | None,
        gpus: float,
        progress: Any,
    ) -> None:
        self.ray = ray
        self._actor_class = ray.remote(_RayWorker).options(
            num_cpus=1, num_gpus=gpus, max_restarts=0, max_task_retries=0
        )
        self._args = (settings, ray.put(model) if model else None, gpus > 0, progress)
        self.actors = [self._new() for _ in range(count)]
        self.replaced = 0

    def _new(self) -> Any:
        return self._actor_class.remote(*self._args)

    def replace(self, index: int) -> None:
        """A fresh actor in the dead one's place."""
        self.ray.kill(self.actors[index], no_restart=True)
        self.actors[index] = self._new()
        self.replaced += 1

    def describe(self) -> list[str]:
        """Each actor's ``host:pid`` and backend, once all have loaded the model.

        :raises InputError: an actor could not start (e.g. the model does not load).
        """
        try:
            return list(self.ray.get([actor.describe.remote() for actor in self.actors]))
        except self.ray.exceptions.RayError as error:
            raise InputError(f"the workers could not start: {_reason(error)}") from error


class _RayWorker:
    """The actor: a :class:`BagWorker` whose progress goes to the driver's counter."""

    def __init__(
        self, settings: FleetSettings, model: Any, gpu: bool, progress: Any | None
    ) -> None:
        import ray

        package = ray.get(model) if isinstance(model, ray.ObjectRef) else model
        context: Any = ray.get_runtime_context()
        threads = max(1, int(context.get_assigned_resources().get("CPU", 1)))
        import cv2

        # This process is one worker of several on the node: OpenCV's pool (resizes,
        # components, PNG) gets the worker's CPUs, not every core.
        cv2.setNumThreads(threads)
        tell = (lambda n: progress.add.remote(n)) if progress is not None else None
        self.worker = BagWorker(settings, package, threads, gpu, tell)
        self.worker.label += f" node {context.get_node_id()[:8]}"

    def describe(self) -> str:
        return self.worker.describe()

    def read(self, name: str, bag: str) -> BagState | BagFailure:
        return self.worker.read(name, bag)

    def details(
        self, name: str, bag: str, threshold: float, wanted: list[int]
    ) -> BagDetails | BagFailure:
        return self.worker.details(name, bag, threshold, wanted)


class _Counter:
    """Frames done, told by the workers (a Ray actor of no CPU)."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, count: int) -> None:
        self.count += count

    def value(self) -> int:
        return self.count


#: One job: (bag name, actor method, its arguments after the name, the actor to run it
#: on or None for any).
Job = tuple[str, str, tuple[Any, ...], "int | None"]


def _run_tasks(
    pool: _Pool,
    jobs: Sequence[Job],
    on_done: Callable[[str, Any, int], None],
    poll: Callable[[], None],
) -> None:
    """Run jobs, one in flight per actor; a job with an actor waits for that actor.

    ``on_done(name, result, actor index)`` gets the method's return value, or a
    :class:`BagFailure` when the actor died under the job (it is then replaced).
    """
    ray = pool.ray
    pending = list(jobs)
    running: dict[Any, tuple[int, str, tuple[Any, ...]]] = {}
    idle = deque(range(len(pool.actors)))
    while pending or running:
        for index in list(idle):
            job = next((j for j in pending if j[3] in (None, index)), None)
            if job is None and not running and index == idle[-1]:
                job = pending[0]  # no job for any idle actor: this one (reads the bag again)
            if job is None:
                continue
            pending.remove(job)
            idle.remove(index)
            name, method, args, _ = job
            ref = getattr(pool.actors[index], method).remote(name, *args)
            running[ref] = (index, name, args)
        done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
        poll()
        for ref in done:
            index, name, args = running.pop(ref)
            try:
                on_done(name, ray.get(ref), index)
            except ray.exceptions.RayActorError as error:
                LOGGER.error("worker died evaluating %s: %s", name, _reason(error))
                reason = f"worker died: {_reason(error)}"
                on_done(name, BagFailure(name, str(args[0]), reason), index)
                if pool.replaced >= MAX_REPLACEMENTS:
                    raise InputError(
                        f"{pool.replaced} workers died; stopping (the last on bag {name})"
                    ) from error
                pool.replace(index)
            except ray.exceptions.RayError as error:  # not an AnomalySegError: a bug
                on_done(name, BagFailure(name, str(args[0]), _reason(error)), index)
            idle.append(index)


def evaluate_fleet(
    bags: Sequence[Path],
    out_dir: Path,
    settings: FleetSettings,
    model: ModelPackage | None = None,
    *,
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float | None = None,
    cache_dir: Path | None = None,
    gallery_size: int = 4,
    progress: bool = True,
) -> FleetResult:
    """Evaluate ``bags`` on Ray and write the merged report to ``out_dir``.

    :param bags: the bags (:func:`~anomaly_seg_ros.evaluation.fleet_inputs.find_bags`).
    :param out_dir: report folder to create (written under a temporary name).
    :param model: run it on the camera images; None evaluates recorded scores.
    :param address: an existing cluster; None starts a local one.
    :param workers: actors (default: the cluster's CPUs, or its GPUs with a model).
    :param gpus_per_worker: GPUs per actor (default 1 when the cluster has GPUs and a
        model runs, else 0).
    :param cache_dir: per-bag result cache (default ``<out_dir>.cache``).
    :return: what was evaluated and what failed.
    :raises InputError: ``out_dir`` exists, no bag, an unreachable address, or no bag
        could be evaluated (each failure is logged with its reason first).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise InputError(f"report folder {out_dir} already exists; choose a new path")
    if not bags:
        raise InputError("no bag to evaluate")
    names = {bag.name: Path(bag) for bag in bags}
    cache = ResultCache(
        cache_dir if cache_dir is not None else out_dir.with_name(f"{out_dir.name}.cache")
    )
    model_digest = model.digest() if model else "recorded scores"
    keys = {
        name: cache_key(bag, model_digest, settings.fingerprint()) for name, bag in names.items()
    }
    states: dict[str, BagState] = {}
    cached: list[str] = []
    # Pixel state is merged as it arrives and dropped from the bag's state (a binned
    # evaluator is 16 MB a bag); the cache keeps it whole.
    pixel = create_pixel_evaluator(settings.mode)

    def keep(name: str, state: BagState) -> None:
        pixel.merge(state.pixel)
        states[name] = replace(state, pixel=create_pixel_evaluator(settings.mode))

    for name in names:
        value = cache.load(name, keys[name], "read")
        if isinstance(value, BagState):
            keep(name, value)
            cached.append(name)
    failures: dict[str, BagFailure] = {}
    details: dict[str, BagDetails] = {}
    todo = [name for name in names if name not in states]
    ray, started = start_ray(address, workers)
    try:
        resources = ray.cluster_resources()
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if model is not None and resources.get("GPU", 0) >= 1 else 0.0
        count = workers or int(
            resources.get("GPU", 1) // gpus_per_worker if gpus_per_worker else resources["CPU"]
        )
        count = max(1, min(count, len(names)))
        counter = ray.remote(_Counter).options(num_cpus=0).remote() if progress else None
        timings: dict[str, float] = {}
        mark = time.perf_counter()
        pool = _Pool(ray, count, settings, model, gpus_per_worker, counter)
        worker_lines = pool.describe()
        timings["workers"], mark = time.perf_counter() - mark, time.perf_counter()
        LOGGER.info(
            "%d bags (%d cached) on %d workers: %s", len(names), len(cached), count,
            ", ".join(worker_lines),
        )  # fmt: skip
        bag_bar = tqdm(total=len(names), initial=len(cached), desc="bags", unit="bag",
                       disable=not progress, position=0)  # fmt: skip
        frame_bar = tqdm(desc="frames", unit="frame", disable=not progress, position=1)

        def poll() -> None:
            if counter is not None:
                frame_bar.update(ray.get(counter.value.remote()) - frame_bar.n)

        read_by: dict[str, int] = {}  # bag -> the actor that holds its cached maps

        def read_done(name: str, value: Any, index: int) -> None:
            bag_bar.update(1)
            read_by[name] = index
            if isinstance(value, BagFailure):
                failures[name] = value
                LOGGER.error("bag %s not evaluated: %s", name, value.reason)
                return
            cache.save(name, keys[name], "read", value)
            keep(name, value)

        jobs: list[Job] = [(name, "read", (str(names[name]),), None) for name in todo]
        _run_tasks(pool, jobs, read_done, poll)
        bag_bar.close()
        timings["read"], mark = time.perf_counter() - mark, time.perf_counter()
        if not states:
            raise InputError(
                f"none of the {len(names)} bags was evaluated (the reasons are listed above)"
            )
        # Pass 2 at the fleet's threshold: component state and the gallery's frames.
        merged = merge_states([states[name] for name in sorted(states)], settings, pixel=pixel)
        threshold = merged.scores[next(iter(merged.scores))].pixel.best_f1_threshold
        wanted = _gallery_wanted(merged, states, gallery_size)
        detail_key = f"{threshold!r}:{sorted(wanted.items())}"

        def details_done(name: str, value: Any, index: int) -> None:
            if isinstance(value, BagFailure):
                failures[name] = value
                LOGGER.error("bag %s: component pass failed: %s", name, value.reason)
                return
            details[name] = value
            cache.save(name, keys[name] + _short(detail_key), "details", value)

        jobs = []
        if math.isfinite(threshold):
            for name in sorted(states):
                value = cache.load(name, keys[name] + _short(detail_key), "details")
                if isinstance(value, BagDetails):
                    details[name] = value
                else:
                    arguments = (str(names[name]), threshold, wanted.get(name, []))
                    jobs.append((name, "details", arguments, read_by.get(name)))
            _run_tasks(pool, jobs, details_done, poll)
        frame_bar.close()
        timings["details"], mark = time.perf_counter() - mark, time.perf_counter()
    finally:
        if started:
            ray.shutdown()
    if any(states.pop(name, None) for name in list(failures)) and states:
        # A bag failed in pass 2: its pixels leave the totals (read back from the cache).
        pixel = create_pixel_evaluator(settings.mode)
        for name in sorted(states):
            full = cache.load(name, keys[name], "read")
            if not isinstance(full, BagState):
                raise InputError(f"the cached pass-1 state of bag {name} cannot be read back")
            pixel.merge(full.pixel)
    fleet = FleetResult(
        result=None,
        states=states,
        failures=[failures[name] for name in sorted(failures)],
        bags=names,
        seconds=time.perf_counter() - start,
        workers=worker_lines,
        cached=cached,
        details=details,
        timings=timings,
    )
    if not states:
        raise InputError(f"none of the {len(names)} bags was evaluated")
    fleet.result = merge_states(
        [states[name] for name in sorted(states)],
        settings,
        [details[name] for name in sorted(states) if name in details],
        threshold,
        pixel,
    )
    confusion = SegmentationEvaluator(MASK_CLASSES)
    for state in states.values():
        if state.confusion is not None:
            confusion.merge(state.confusion)
    fleet.mask = confusion.evaluate()
    write_fleet_report(fleet, out_dir, gallery_size)
    timings["report"] = time.perf_counter() - mark
    return fleet


def _short(text: str) -> str:
    import hashlib

    return "-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def merge_states(
    states: Sequence[BagState],
    settings: FleetSettings,
    details: Sequence[BagDetails] = (),
    component_threshold: float | None = None,
    pixel: PixelEvaluator | None = None,
) -> EvaluationResult:
    """One result over the bags' frames, in the given order (frames ``bag:stamp``).

    :param details: the bags' pass-2 state, same order (component metrics); empty: none.
    :param pixel: the bags' pixel state, already merged (else merged from ``states``).
    """
    first = states[0]
    name = first.score_name
    merge_pixels = pixel is None
    pixel = pixel or create_pixel_evaluator(settings.mode)
    objects = ObjectEvaluator(
        first.objects.threshold, first.objects.min_area, first.objects.min_instance_size
    )
    frames = []
    for state in states:
        if merge_pixels:
            pixel.merge(state.pixel)
        objects.merge(state.objects)
        frames += [replace(f, frame=f"{state.name}:{f.frame}") for f in state.frames]
    component = None
    if details and component_threshold is not None:
        components = ComponentEvaluator(component_threshold, *settings.component_sizes)
        for item in details:
            components.merge(item.components)
        component = components.evaluate()
    score = ScoreResult(
        name=name,
        pixel=pixel.evaluate(),
        curve=pixel.operating_points().downsample(512),
        frames=frames,
        component=component,
        component_threshold=component_threshold if component else None,
        objects=objects.evaluate(),
    )
    counts = {key: sum(s.counts[key] for s in states) for key in first.counts}
    return EvaluationResult(
        dataset=f"fleet of {len(states)} bags",
        mode=settings.mode,
        frame_names=[frame.frame for frame in frames],
        scores={name: score},
        settings=dict(counts),
    )


def _gallery_wanted(
    merged: EvaluationResult, states: dict[str, BagState], size: int
) -> dict[str, list[int]]:
    """Bag name -> indices of its frames in the fleet's gallery (worst and best by AP)."""
    from anomaly_seg_ros.evaluation.report import gallery_frames

    wanted: dict[str, list[int]] = {}
    starts, offset = {}, 0
    for name in sorted(states):
        starts[name] = offset
        offset += len(states[name].frames)
    for _, _, _, index in gallery_frames(merged, None, size):
        bag = merged.frame_names[index].rpartition(":")[0]
        wanted.setdefault(bag, []).append(index - starts[bag])
    return {bag: sorted(set(items)) for bag, items in wanted.items()}
