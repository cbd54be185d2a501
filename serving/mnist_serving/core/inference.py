"""The I/O-agnostic core: validate → preprocess → batch → run → answer.

REST and gRPC adapters translate their wire formats into the calls below and render the
results; :mod:`~mnist_serving.core.accounting` counts each request around them::

    async with accounting.request(record, credential, "inference") as record:
        result = await core.predict("serving_default", {"images": array}, VersionSpec(), record)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnist_contract.model import INPUT_NAME, MODEL_NAME, SERVING_DEFAULT, SIGNATURES, Signature
from mnist_contract.pixels import model_input
from mnist_contract.preprocess import ImageLimits
from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.admission import Admission
from mnist_serving.core.digits import (
    ClassifyResult,
    DigitImage,
    any_encoded,
    classifications,
    to_frames,
)
from mnist_serving.core.readiness import Readiness
from mnist_serving.core.shadow import ShadowTraffic
from mnist_serving.errors import BackendUnavailable, InvalidInput, servable_not_found
from mnist_serving.observability.collectors import FEW_VALUES
from mnist_serving.observability.metrics import Metrics
from mnist_serving.observability.samples import SampleWriter, model_frames
from mnist_serving.observability.tracing import Tracing, epoch_ns
from mnist_serving.repositories.repository import (
    ModelRepository,
    ServedVersion,
    VersionSpec,
    VersionStatus,
)
from mnist_serving.runtimes.batching import Ticket, Timing
from mnist_serving.settings import Settings

DIGIT_LABELS = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class PredictResult:
    outputs: dict[str, np.ndarray]
    version: int


class InferenceCore:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        repository: ModelRepository,
        admission: Admission,
        readiness: Readiness,
        tracing: Tracing | None = None,
        samples: SampleWriter | None = None,
        shadow: ShadowTraffic | None = None,
    ) -> None:
        self.repository = repository
        self.shadow = shadow
        self.readiness = readiness
        self.samples = samples
        self._metrics = metrics
        self._admission = admission
        self._tracing = tracing or Tracing()
        self._max_images = settings.max_images_per_request
        self._limits = ImageLimits(settings.max_image_side, settings.max_image_pixels)

    @property
    def ready(self) -> bool:
        """Loaded, warm, backend reachable, and not shutting down."""
        return self.readiness.ready

    def readiness_report(self) -> dict[str, object]:
        """``/readyz``'s answer: ready with the versions serving, or the reason not."""
        if self.ready:
            served = self.repository.versions
            return {
                "ready": True,
                "model": MODEL_NAME,
                "versions": [v.version for v in served],
                "runtime": served[-1].runtime.name,
                "precision": served[-1].runtime.precision,
            }
        if self.readiness.draining:
            reason = "shutting down"
        elif not self.repository.versions:
            reason = "model is loading"
        else:
            reason = "backend unavailable"
        return {"ready": False, "reason": reason}

    @staticmethod
    def require_model(name: str, spec: VersionSpec) -> None:
        """Refuse a request for another model the way TF Serving does."""
        if name != MODEL_NAME:
            if not name:
                raise InvalidInput(f"the model name is empty; this server serves '{MODEL_NAME}'")
            raise servable_not_found(spec.describe(name))

    # -- TF Serving API -------------------------------------------------------------------

    async def predict(
        self,
        signature: str,
        inputs: dict[str, np.ndarray],
        spec: VersionSpec,
        record: RequestRecord | None = None,
    ) -> PredictResult:
        served = self.repository.resolve(spec)
        chosen = SIGNATURES.get(signature or SERVING_DEFAULT.name)
        if chosen is None:
            raise InvalidInput(
                f'Serving signature name: "{signature}" not found in signature def '
                f"(available: {', '.join(SIGNATURES)})"
            )
        images = self._signature_input(chosen, inputs)
        with served.batcher.announce() as ticket:
            batch = images.reshape(-1, *SERVING_DEFAULT.input_shape)
            probs = await self._run(served, batch, ticket, record)
        return PredictResult({chosen.output: probs}, served.version)

    def _signature_input(self, signature: Signature, inputs: dict[str, np.ndarray]) -> np.ndarray:
        name = signature.name
        unknown = sorted(set(inputs) - {INPUT_NAME})
        if unknown:
            raise InvalidInput(
                f"unknown input(s) {', '.join(map(repr, unknown))} for signature {name}; "
                f"it takes '{INPUT_NAME}' only"
            )
        if INPUT_NAME not in inputs:
            raise InvalidInput(f"missing input '{INPUT_NAME}' for signature {name}")
        array = inputs[INPUT_NAME]
        if array.dtype.kind not in "fiub":
            raise InvalidInput(
                f"input '{INPUT_NAME}' must be numeric (float32 pixels in [0, 1]), got {array.dtype}"
            )
        shape = signature.input_shape
        if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
            want = "[N," + ",".join(map(str, shape)) + "]"
            raise InvalidInput(
                f"input '{INPUT_NAME}' of signature {name} must have shape {want}, "
                f"got {list(array.shape)}"
            )
        self._check_count(len(array))
        images = array.astype(np.float32, copy=False)
        if not np.isfinite(images).all():
            raise InvalidInput(f"input '{INPUT_NAME}' contains NaN or infinity")
        return images

    def _check_count(self, n: int) -> None:
        if n == 0:
            raise InvalidInput("no images in the request (an empty batch)")
        if n > self._max_images:
            raise InvalidInput(f"{n} images in one request; the limit is {self._max_images}")

    async def _run(
        self,
        served: ServedVersion,
        images: np.ndarray,
        ticket: Ticket,
        record: RequestRecord | None,
    ) -> np.ndarray:
        timing = record.timing if record is not None else None
        if record is not None:  # its errors from here on are this version's
            record.version = served.version
        probs = await served.batcher.run(images, ticket, timing=timing)
        if timing is not None:
            self._learn_wait(timing)
        self._count_predictions(probs, str(served.version))
        if record is not None:
            record.images += len(images)
            self._mirror(served, images, probs)
        if self.samples is not None:
            rid = record.request_id if record is not None else ""
            self.samples.offer(model_frames(images), probs, served.version, rid)
        return probs

    def _learn_wait(self, timing: Timing) -> None:
        """Tell the governor how long this request waited: before its model call (being read,
        parsed, queued), and after it until the event loop came back to it. Both grow with
        the work queued in this process, whatever it is waiting for."""
        now = time.perf_counter()
        waited = (timing.model_started - timing.arrived) + (now - timing.answered)
        self._admission.observe(waited, now)

    def _count_predictions(self, probs: np.ndarray, version: str) -> None:
        """The digits answered and their confidence, overall and by version."""
        metrics = self._metrics
        digits = probs.argmax(axis=1)
        if len(digits) <= FEW_VALUES:  # most requests: one image, a loop beats bincount
            for digit in digits.tolist():
                metrics.series("predictions", DIGIT_LABELS[digit]).inc()
                metrics.series("version_predictions", version, DIGIT_LABELS[digit]).inc()
        else:
            for digit, count in enumerate(np.bincount(digits, minlength=10).tolist()):
                if count:
                    metrics.series("predictions", DIGIT_LABELS[digit]).inc(count)
                    metrics.series("version_predictions", version, DIGIT_LABELS[digit]).inc(count)
        confidence = probs[np.arange(len(probs)), digits]
        metrics.confidence.observe_many(confidence)
        metrics.version_confidence.labels(version).observe_many(confidence)

    def _mirror(self, served: ServedVersion, images: np.ndarray, probs: np.ndarray) -> None:
        """A share of client requests also goes to the shadow version, off this request's
        path (:mod:`~mnist_serving.core.shadow`)."""
        if self.shadow is None:
            return
        target = self.repository.shadow_target()
        if target is not None and target is not served:
            self.shadow.offer(target, images, probs)

    # -- digits API -----------------------------------------------------------------------

    async def classify(
        self,
        images: Sequence[DigitImage],
        spec: VersionSpec,
        record: RequestRecord | None = None,
    ) -> ClassifyResult:
        served = self.repository.resolve(spec)
        self._check_count(len(images))
        with served.batcher.announce() as ticket:
            started = time.perf_counter()
            if any_encoded(images):
                # Decoding a large image takes milliseconds: keep it off the event loop.
                frames = await asyncio.to_thread(to_frames, images, self._limits)
            else:
                frames = to_frames(images, self._limits)
            if record is not None and record.timing.span is not None:
                end = epoch_ns(time.perf_counter())
                self._tracing.child("preprocess", record.timing.span, epoch_ns(started), end)
            probs = await self._run(served, model_input(frames), ticket, record)
        return classifications(probs, frames, served.version)

    # -- status and metadata --------------------------------------------------------------

    def status(self, spec: VersionSpec) -> list[VersionStatus]:
        """Every version's state (TF Serving's GetModelStatus), or the one asked for."""
        if spec.is_default:
            statuses = self.repository.statuses()
            if not statuses:
                raise BackendUnavailable(f"model {MODEL_NAME} is still loading", retry_after=1)
            return statuses
        return [self.repository.status_of(spec)]

    def metadata(self, spec: VersionSpec) -> ServedVersion:
        return self.repository.resolve(spec)

    def served_versions(self, spec: VersionSpec) -> list[int]:
        """The versions serving (the one asked for, when one is), newest first."""
        if not spec.is_default:
            return [self.repository.resolve(spec).version]
        return sorted((v.version for v in self.repository.versions), reverse=True)

    def model_ready(self, spec: VersionSpec) -> bool:
        """Whether the version asked for (the default one when none is) takes requests now;
        :class:`~mnist_serving.errors.NotFound` for a version or label not served."""
        if not spec.is_default:
            self.repository.resolve(spec)
        return self.ready
