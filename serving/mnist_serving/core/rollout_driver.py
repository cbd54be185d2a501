"""The automatic rollout (``mnist-serve --rollout auto``) in a running gateway.

Its state lives in one file beside the model config (``<config>.rollout.json``, or
``<model_dir>/mnist.rollout.json`` without one), replaced whole under a lock, so it survives a
restart and every worker reads the same. One worker decides (the first, or the only process):
each tick it reads the figures since the current step began from the metrics of every worker
(:mod:`.rollout_figures`), lets :func:`~mnist_serving.core.rollout.decide` move the state, and
writes it with the gates it read. Every worker, each tick, lays the state over its model config
(:meth:`LocalRepository.apply_rollout`): where ``stable`` points, the candidate's canary and
shadow shares. An operator's command (pause, resume, promote, abort) changes the same file from
whichever worker received it, and takes effect there at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Protocol

from mnist_serving.core import rollout_figures
from mnist_serving.core.rollout import (
    Figures,
    RolloutState,
    begin,
    decide,
    gates,
    promote,
    roll_back,
)
from mnist_serving.errors import Conflict, InvalidInput
from mnist_serving.files import locked, write_atomically
from mnist_serving.model_config import ModelConfig, Thresholds
from mnist_serving.observability.metrics import Metrics
from mnist_serving.repositories.repository import RolloutOverlay, ServedVersion

log = logging.getLogger(__name__)
COMMANDS = ("pause", "resume", "promote", "abort")
ACTIVE = ("shadow", "canary")


class Rollable(Protocol):
    """What the driver needs of the repository (the local one: versions on disk)."""

    config: ModelConfig

    @property
    def versions(self) -> list[ServedVersion]: ...

    def apply_rollout(self, overlay: RolloutOverlay | None) -> None: ...


class RolloutStore:
    """The state file: read by every worker, changed under a lock, replaced whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = path.with_name(f".{path.name}.lock")

    def read(self) -> tuple[RolloutState | None, dict[str, Any]]:
        """The state, and what the deciding worker last read (gates, figures)."""
        try:
            doc = json.loads(self.path.read_text())
            fields = {k: doc[k] for k in RolloutState.__dataclass_fields__ if k in doc}
            return RolloutState(**fields), doc.get("seen", {})
        except FileNotFoundError:
            return None, {}
        except (ValueError, TypeError, KeyError) as exc:
            log.error(
                "rollout state %s cannot be read (%s); starting from the versions", self.path, exc
            )
            return None, {}

    def update(
        self, change: Callable[[RolloutState | None], RolloutState | None], seen: dict[str, Any]
    ) -> RolloutState | None:
        with locked(self._lock):
            state, before = self.read()
            new = change(state)
            if new is not None and (new != state or seen != before):  # a quiet tick writes nothing
                write_atomically(self.path, json.dumps({**asdict(new), "seen": seen}, indent=1))
            return new


class RolloutDriver:
    def __init__(
        self,
        store: RolloutStore,
        repository: Rollable,
        metrics: Metrics,
        *,
        decides: bool,
        tick_seconds: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._repository = repository
        self._metrics = metrics
        self._decides = decides
        self._tick_seconds = tick_seconds
        self._clock = clock
        self._baseline: tuple[tuple[Any, ...], rollout_figures.Snapshot] | None = None
        self._latest: rollout_figures.Snapshot | None = None
        self._applied: RolloutOverlay | None = None
        self._shown: tuple[str, ...] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def thresholds(self) -> Thresholds:
        return self._repository.config.rollout

    def prepare(self) -> None:
        """Before the versions load: a rollout in progress pins its stable version and its
        candidate, so a restart loads both and resumes where it was."""
        self._apply(self._store.read()[0])

    async def start(self) -> None:
        self.tick()  # stable pinned before any new version can be loaded
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="rollout")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            try:
                self.tick()
            except Exception:  # the rollout must outlive any one bad look
                log.exception("rollout tick failed; trying again")

    def tick(self) -> None:
        if self._decides:
            seen: dict[str, Any] = {}
            state = self._store.update(lambda s: self._decide(s, seen), seen)
        else:
            state, _ = self._store.read()
        self._apply(state)

    def _decide(self, state: RolloutState | None, seen: dict[str, Any]) -> RolloutState | None:
        served = sorted(v.version for v in self._repository.versions)
        if not served:
            return state
        now = self._clock()
        if state is None:
            stable = self._repository.config.labels.get("stable", served[-1])
            state = RolloutState("stable", stable, since=now, reason=f"version {stable} serves")
        started = begin(state, served[-1], now)
        if started.phase not in ACTIVE:
            return started
        figures = self._figures(started)
        seen.update(
            figures=asdict(figures),
            gates=[asdict(g) for g in gates(started.phase, figures, self.thresholds)],
        )
        decided = decide(started, figures, self.thresholds, now)
        if _step(decided) != _step(started):
            self._restart_count(decided)
        for before, after in ((state, started), (started, decided)):
            self._note(before, after)
        return decided

    def _figures(self, state: RolloutState) -> Figures:
        """Since the current step began (or since this worker began watching it)."""
        assert state.stable is not None and state.candidate is not None
        now = rollout_figures.snapshot(self._metrics.exposition)
        if self._baseline is None or self._baseline[0] != _step(state):
            self._baseline = (_step(state), now)
        self._latest = now
        return rollout_figures.since(now, self._baseline[1], state.stable, state.candidate)

    def _restart_count(self, state: RolloutState) -> None:
        """A new step counts from now: what the last look read is its baseline."""
        if self._latest is not None and state.phase in ACTIVE:
            self._baseline = (_step(state), self._latest)

    def _note(self, before: RolloutState, after: RolloutState) -> None:
        if after is before or after == before:
            return
        decision = _decision(before, after)
        self._metrics.series("rollout_decisions", decision).inc()
        level = logging.WARNING if decision == "rolled_back" else logging.INFO
        log.log(
            level,
            "rollout: %s (stable %s, candidate %s): %s",
            decision,
            after.stable,
            after.candidate,
            after.reason,
        )

    # -- what every worker does with the state ----------------------------------------------

    def _apply(self, state: RolloutState | None) -> None:
        overlay = None
        if state is not None and state.stable is not None:
            canary, shadow = state.traffic(self.thresholds)
            candidate = state.candidate if state.phase in ACTIVE else None
            overlay = RolloutOverlay(state.stable, candidate, canary, shadow)
        if overlay != self._applied:
            self._repository.apply_rollout(overlay)
            self._applied = overlay
        self._show(state, overlay)

    def _show(self, state: RolloutState | None, overlay: RolloutOverlay | None) -> None:
        if state is None:
            return
        shown = (state.phase, str(state.stable), str(state.candidate or ""))
        if shown != self._shown:
            if self._shown is not None:
                self._metrics.rollout_phase.labels(*self._shown).set(0)
            self._metrics.rollout_phase.labels(*shown).set(1)
            self._shown = shown
        self._metrics.rollout_weight.set(overlay.canary_weight if overlay else 0.0)

    # -- an operator ------------------------------------------------------------------------

    def command(self, action: str) -> dict[str, Any]:
        """Pause, resume, promote or abort the rollout in progress; the status after it."""
        if action not in COMMANDS:
            raise InvalidInput(
                f"unknown rollout command {action!r}; choose from {', '.join(COMMANDS)}"
            )
        now = self._clock()

        def change(state: RolloutState | None) -> RolloutState:
            if state is None or state.phase not in ACTIVE:
                phase = state.phase if state is not None else "none yet"
                raise Conflict(f"no rollout in progress (phase {phase}); nothing to {action}")
            return {
                "pause": lambda: replace(state, paused=True, reason="paused by an operator"),
                "resume": lambda: replace(state, paused=False, reason="resumed by an operator"),
                "promote": lambda: promote(state, now, "promoted by an operator"),
                "abort": lambda: roll_back(state, now, "aborted by an operator"),
            }[action]()

        _, seen = self._store.read()
        state = self._store.update(change, seen)
        self._metrics.series("rollout_decisions", f"operator_{action}").inc()
        log.warning(
            "rollout: %s by an operator (stable %s, candidate %s)",
            action,
            state and state.stable,
            state and state.candidate,
        )
        self._apply(state)
        return self.status()

    def status(self) -> dict[str, Any]:
        """The state as ``GET /v1/models/mnist/rollout`` answers it."""
        state, seen = self._store.read()
        if state is None:
            return {"mode": "auto", "phase": "none yet", "reason": "no version has loaded yet"}
        canary, shadow = state.traffic(self.thresholds)
        return {
            "mode": "auto",
            **asdict(state),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.since)),
            "canary_weight": canary,
            "shadow_weight": shadow,
            "gates": seen.get("gates", []) if state.phase in ACTIVE else [],
            "figures": seen.get("figures", {}) if state.phase in ACTIVE else {},
            "thresholds": asdict(self.thresholds),
        }


def _step(state: RolloutState) -> tuple[Any, ...]:
    return (state.phase, state.step, state.stable, state.candidate, state.since)


def _decision(before: RolloutState, after: RolloutState) -> str:
    if after.phase == "rolled_back":
        return "rolled_back"
    if after.phase == "promoted":
        return "promoted"
    if after.phase == "shadow" and before.phase != "shadow":
        return "started"
    if after.phase == "stable" and before.phase == "stable":
        return "stable"
    return "advanced"


def state_file(model_config_file: Path | None, model_dir: Path) -> Path:
    """Where the rollout's state is kept: beside the model config, or in the model folder."""
    if model_config_file is not None:
        return model_config_file.with_name(model_config_file.stem + ".rollout.json")
    return model_dir / "mnist.rollout.json"
