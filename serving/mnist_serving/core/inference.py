"""The I/O-agnostic core: validate → preprocess → batch → run → post-process → count.

REST and gRPC adapters only translate their wire formats into the calls below and render the
results; every request is counted here, once, whatever protocol carried it::

    async with core.request("rest", "predict"):
        result = await core.predict("serving_default", {"images": array}, VersionSpec())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from mnist_contract.model import INPUT_NAME, MODEL_NAME, SERVING_DEFAULT, SIGNATURES, Signature
from mnist_contract.pixels import PixelError, model_input, to_uint8
from mnist_contract.preprocess import (
    ImageError,
    ImageLimits,
    decode_image,
    frames_already_mnist,
    to_mnist_frame,
)
from mnist_serving.core.access_control import AccessControl
from mnist_serving.core.admission import Admission
from mnist_serving.core.readiness import Readiness
from mnist_serving.deadlines import within
from mnist_serving.errors import (
    BackendUnavailable,
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    QueueDelayed,
    RateLimited,
    ServingError,
    TooManyInFlight,
    Unauthenticated,
    servable_not_found,
)
from mnist_serving.observability.access_log import AccessLog, AccessRecord, request_id, utc_now
from mnist_serving.observability.metrics import FEW_VALUES, Metrics, tfserving_registry
from mnist_serving.observability.recent_traffic import RecentTraffic
from mnist_serving.observability.samples import SampleWriter, to_frames
from mnist_serving.observability.tracing import Tracing, epoch_ns
from mnist_serving.repositories.protocol import (
    ModelRepository,
    ServedVersion,
    VersionSpec,
    VersionStatus,
)
from mnist_serving.runtimes.batching import Ticket, Timing
from mnist_serving.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
INFERENCE_ROUTES = frozenset({"predict", "classify", "infer"})
DIGIT_LABELS = tuple(str(digit) for digit in range(10))
SHED_REPORT_S = 10.0  # refusals by queue delay are summed into one log line this often
REFUSAL_REASONS: dict[type[ServingError], str] = {
    Overloaded: "queue_full",
    QueueDelayed: "queue_delay",
    TooManyInFlight: "in_flight_limit",
    RateLimited: "rate_limited",
    Unauthenticated: "unauthenticated",
}


@dataclass(frozen=True)
class PredictResult:
    outputs: dict[str, np.ndarray]
    version: int


@dataclass(frozen=True)
class DigitImage:
    """One image as the digits API received it, before preprocessing.

    Exactly one of ``encoded`` (image file bytes) and ``pixels`` (a 2-D array, uint8 0-255 or
    float 0-1 per the documented rule) is set.
    """

    encoded: bytes | None = None
    pixels: np.ndarray | None = None


@dataclass(frozen=True)
class Classification:
    digit: int
    confidence: float
    probabilities: np.ndarray
    frame: np.ndarray  # the 28×28 uint8 frame the model saw


@dataclass(frozen=True)
class ClassifyResult:
    results: list[Classification]
    version: int


@dataclass
class RequestTracker:
    """One request as it goes: filled in by the core (and the adapter, for the HTTP status of
    an answer that is not an error), read by :meth:`InferenceCore.request` when it ends."""

    request_id: str = ""
    code: str = "OK"
    images: int = 0
    version: int | None = None
    http_status: int = 200
    key: str | None = None  # the API key's name, when keys are on
    timing: Timing = field(default_factory=Timing)


class InferenceCore:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        repository: ModelRepository,
        access: AccessControl,
        readiness: Readiness,
        tracing: Tracing | None = None,
        samples: SampleWriter | None = None,
        recent: RecentTraffic | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing or Tracing()
        self.samples = samples
        self.metrics = metrics
        self.repository = repository
        self.access = access
        self.readiness = readiness
        self.limits = ImageLimits(settings.max_image_side, settings.max_image_pixels)
        self._recent = recent or RecentTraffic()
        self._open_routes = frozenset(settings.open_routes)
        self._tfserving_view = tfserving_registry(metrics, MODEL_NAME)
        target_ms = settings.queue_target_ms
        self.admission = Admission(settings.max_in_flight_requests, target_ms / 1000 or None)
        self._shed_since_report = 0
        self._shed_report_at = 0.0
        self._in_progress = 0  # requests of any route inside request()
        self._idle = asyncio.Event()
        self._idle.set()
        self.access_log = access_log or AccessLog(settings.access_log)

    # -- what the adapters offer besides inference ----------------------------------------

    @property
    def ready(self) -> bool:
        """Loaded, warm, backend reachable, and not shutting down."""
        return self.readiness.ready

    def readiness_report(self) -> dict[str, object]:
        """``/readyz``'s answer: ready with the versions serving, or the reason not."""
        if self.ready:
            versions = [v.version for v in self.repository.versions]
            return {"ready": True, "model": MODEL_NAME, "versions": versions}
        if self.readiness.draining:
            reason = "shutting down"
        elif not self.repository.versions:
            reason = "model is loading"
        else:
            reason = "backend unavailable"
        return {"ready": False, "reason": reason}

    def authorize(self, route: str, credential: str | None) -> None:
        """With API keys on, an operational route not listed as open needs a key too."""
        if route not in self._open_routes and self.access.enabled:
            self.access.authenticate(credential)

    def stats(self) -> dict[str, float | int | None]:
        """Requests/s and p50/p99 latency of inference requests over the last minute (of
        every worker, with several)."""
        return self._recent.summary()

    def metrics_text(self, openmetrics: bool = False) -> bytes:
        """The Prometheus text format, or OpenMetrics (which carries the latency histogram's
        trace-id exemplars) for a scraper that asks for it."""
        if openmetrics:
            text: bytes = openmetrics_latest(self.metrics.exposition)  # type: ignore[no-untyped-call]
            return text
        return generate_latest(self.metrics.exposition)

    def tfserving_metrics_text(self) -> bytes:
        """TF Serving's metric names, for a gateway standing in for TF Serving."""
        return generate_latest(self._tfserving_view)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in progress (at most ``timeout`` s); whether it is so."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @staticmethod
    def require_model(name: str, spec: VersionSpec) -> None:
        """Refuse a request for another model the way TF Serving does."""
        if name != MODEL_NAME:
            if not name:
                raise InvalidInput(f"the model name is empty; this server serves '{MODEL_NAME}'")
            raise servable_not_found(spec.describe(name))

    @contextlib.asynccontextmanager
    async def request(
        self,
        protocol: str,
        route: str,
        credential: str | None = None,
        *,
        rid: str | None = None,
        peer: str | None = None,
        carrier: Mapping[str, str] | None = None,
        door: tuple[float, float] | None = None,
    ) -> AsyncIterator[RequestTracker]:
        """Check the caller's key and rate, take an inference slot (:mod:`.admission`), then
        count the request: in flight while inside, then total and latency by outcome code,
        and its access-log line. ``rid`` is the request id the adapter decided
        (:func:`~mnist_serving.observability.access_log.request_id`, which it also answers with); without one
        the core makes one. ``door``: the adapter took the slot itself, before reading the
        request (``perf_counter`` times it arrived and was admitted). With tracing on, the
        request is a span continuing the trace context in ``carrier`` (headers, metadata)."""
        tracker = RequestTracker(rid if rid is not None else request_id(None))
        with self.tracing.server_span(protocol, route, tracker.request_id, carrier) as span:
            # Only a sampled request gets child spans, links and an exemplar: an unsampled one
            # costs its non-recording server span and nothing more.
            tracker.timing.span = span if span is not None and span.is_recording() else None
            async with self._counted(protocol, route, credential, tracker, peer, door):
                yield tracker

    @contextlib.asynccontextmanager
    async def _counted(
        self, protocol: str, route: str, credential: str | None, tracker: RequestTracker,
        peer: str | None, door: tuple[float, float] | None,
    ) -> AsyncIterator[None]:  # fmt: skip
        in_flight = self.metrics.series("in_flight", protocol, route)
        in_flight.inc()
        self._in_progress += 1
        self._idle.clear()
        started = tracker.timing.arrived = time.perf_counter()
        if door is not None:
            started, tracker.timing.arrived = door
        entered = False
        try:
            key = self.access.authenticate(credential)
            tracker.key = key if self.access.enabled else None
            self.access.admit(key)
            if route in INFERENCE_ROUTES and door is None:
                await self.admission.enter()
                entered = True
                tracker.timing.arrived = time.perf_counter()
            yield
        except ServingError as exc:
            tracker.code, tracker.http_status = exc.code, exc.http_status
            reason = REFUSAL_REASONS.get(type(exc))
            if reason:
                self._note_refusal(protocol, reason)
            raise
        except asyncio.CancelledError:
            tracker.code, tracker.http_status = "CANCELLED", 499  # the caller went away
            raise
        except Exception:
            tracker.code, tracker.http_status = "INTERNAL", 500
            raise
        finally:
            if entered:
                self.admission.leave()
            in_flight.dec()
            self._in_progress -= 1
            if not self._in_progress:
                self._idle.set()
            elapsed = time.perf_counter() - started
            self.metrics.series("requests", protocol, route, tracker.code).inc()
            self.metrics.observe_latency(
                (protocol, route, tracker.code), elapsed, self.tracing.exemplar(tracker.timing.span)
            )
            if route in INFERENCE_ROUTES:
                self._recent.record(elapsed)
            if tracker.images:
                self.metrics.series("images", protocol).inc(tracker.images)
            if self.access_log.enabled:
                self._log_request(protocol, route, tracker, elapsed, peer)
            span = tracker.timing.span
            if span is not None:
                span.set_attributes({"mnist.code": tracker.code, "mnist.images": tracker.images,
                                     "mnist.model_version": tracker.version or 0})  # fmt: skip

    def _log_request(
        self, protocol: str, route: str, tracker: RequestTracker, elapsed: float, peer: str | None
    ) -> None:
        http_status = tracker.http_status if protocol.endswith("rest") else None
        self._write_access(protocol, route, tracker.request_id, tracker.code, http_status,
                           elapsed, peer, tracker)  # fmt: skip

    def log_probe(
        self, protocol: str, route: str, code: str, http_status: int | None, elapsed: float,
        request: str, peer: str | None,
    ) -> None:  # fmt: skip
        """An operational route's access-log line, when the settings ask for probes too."""
        if self.access_log.enabled and self.settings.access_log_probes:
            self._write_access(protocol, route, request, code, http_status, elapsed, peer)

    def _write_access(
        self, protocol: str, route: str, request: str, code: str, http_status: int | None,
        elapsed: float, peer: str | None, tracker: RequestTracker | None = None,
    ) -> None:  # fmt: skip
        """One access-log line; an inference request's ``tracker`` adds what it did."""
        timing = tracker.timing if tracker is not None else None
        ran = timing is not None and timing.model_s > 0
        self.access_log.write(
            AccessRecord(
                time=utc_now(),
                request_id=request,
                protocol=protocol,
                route=route,
                model_version=tracker.version if tracker is not None else None,
                code=code,
                http_status=http_status,
                images=tracker.images if tracker is not None else 0,
                latency_ms=round(elapsed * 1000, 3),
                queue_ms=round(timing.queue_s * 1000, 3) if ran and timing else None,
                model_ms=round(timing.model_s * 1000, 3) if ran and timing else None,
                peer=peer,
                key=tracker.key if tracker is not None else None,
            )
        )

    def _note_refusal(self, protocol: str, reason: str) -> None:
        self.metrics.series("refused", protocol, reason).inc()
        if reason == "queue_delay":
            self._report_shedding()

    def _report_shedding(self) -> None:
        """One warning per :data:`SHED_REPORT_S` while shedding, not one line per refusal: a
        flood of log lines is the last thing an overloaded gateway needs."""
        self._shed_since_report += 1
        now = time.monotonic()
        if now >= self._shed_report_at:
            state = self.admission.state()
            log.warning(
                "shedding load: %d inference requests refused with 503 in the last %g s; "
                "admitted requests waited over the %g ms queue target, so at most %s are "
                "admitted at once for now",
                self._shed_since_report, SHED_REPORT_S, self.settings.queue_target_ms,
                state.limit,
            )  # fmt: skip
            self._shed_since_report = 0
            self._shed_report_at = now + SHED_REPORT_S

    def count_refusal(self, protocol: str, route: str, refusal: Overloaded, started: float) -> None:
        """A refusal an adapter answered at its door, without entering :meth:`request`:
        counted as a request (total, latency) and as a refusal by reason, as the core counts
        its own."""
        code = refusal.code
        self._note_refusal(protocol, REFUSAL_REASONS[type(refusal)])
        self.metrics.series("requests", protocol, route, code).inc()
        self.metrics.observe_latency((protocol, route, code), time.perf_counter() - started, None)

    async def bounded(self, work: Awaitable[T], caller_deadline_s: float | None = None) -> T:
        """Run ``work`` within the gateway's request time limit and the caller's own deadline
        (the shorter wins); past it the work is cancelled and the caller gets
        :class:`DeadlineExceeded` (504 / DEADLINE_EXCEEDED)."""
        limit = self.settings.request_timeout_ms / 1000
        callers = caller_deadline_s is not None and caller_deadline_s < limit
        timeout = caller_deadline_s if callers and caller_deadline_s is not None else limit
        try:
            return await within(work, timeout)
        except TimeoutError:
            if callers:
                raise DeadlineExceeded(
                    f"the caller's deadline ({timeout:.3f} s) passed before the answer"
                ) from None
            raise DeadlineExceeded(
                f"request took longer than the gateway's limit of {limit:g} s "
                "(request_timeout_ms); send fewer images per request"
            ) from None

    # -- TF Serving API -------------------------------------------------------------------

    async def predict(
        self,
        signature: str,
        inputs: dict[str, np.ndarray],
        spec: VersionSpec,
        tracker: RequestTracker | None = None,
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
            probs = await self._run(served, batch, ticket, tracker)
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
        if n > self.settings.max_images_per_request:
            raise InvalidInput(
                f"{n} images in one request; the limit is {self.settings.max_images_per_request}"
            )

    async def _run(
        self,
        served: ServedVersion,
        images: np.ndarray,
        ticket: Ticket,
        tracker: RequestTracker | None,
    ) -> np.ndarray:
        # With other requests in the gateway (even ones still being read), the event loop is
        # better left free for them while the model runs in a thread.
        alone = self.admission.in_flight <= 1
        timing = tracker.timing if tracker is not None else None
        probs = await served.batcher.run(images, ticket, alone=alone, timing=timing)
        if timing is not None:
            self._learn_wait(timing)
        self.metrics.series("version_requests", str(served.version)).inc()
        self._count_predictions(probs)
        if tracker is not None:
            tracker.images += len(images)
            tracker.version = served.version
        if self.samples is not None:
            rid = tracker.request_id if tracker is not None else ""
            self.samples.offer(to_frames(images), probs, served.version, rid)
        return probs

    def _learn_wait(self, timing: Timing) -> None:
        """Tell the governor how long this request waited: before its model call (being read,
        parsed, queued), and after it until the event loop came back to it. Both grow with
        the work queued in this process, whatever it is waiting for."""
        now = time.perf_counter()
        waited = (timing.model_started - timing.arrived) + (now - timing.answered)
        self.admission.observe(waited, now)

    def _count_predictions(self, probs: np.ndarray) -> None:
        digits = probs.argmax(axis=1)
        if len(digits) <= FEW_VALUES:  # most requests: one image, a loop beats bincount
            for digit in digits.tolist():
                self.metrics.series("predictions", DIGIT_LABELS[digit]).inc()
        else:
            for digit, count in enumerate(np.bincount(digits, minlength=10).tolist()):
                if count:
                    self.metrics.series("predictions", DIGIT_LABELS[digit]).inc(count)
        self.metrics.confidence.observe_many(probs[np.arange(len(probs)), digits])

    # -- digits API -----------------------------------------------------------------------

    async def classify(
        self,
        images: Sequence[DigitImage],
        spec: VersionSpec,
        tracker: RequestTracker | None = None,
    ) -> ClassifyResult:
        served = self.repository.resolve(spec)
        self._check_count(len(images))
        with served.batcher.announce() as ticket:
            started = time.perf_counter()
            if any(img.encoded is not None for img in images):
                # Decoding a large image takes milliseconds: keep it off the event loop.
                frames = await asyncio.to_thread(self._frames, images)
            else:
                frames = self._frames(images)
            if tracker is not None and tracker.timing.span is not None:
                end = epoch_ns(time.perf_counter())
                self.tracing.child("preprocess", tracker.timing.span, epoch_ns(started), end)
            batch = model_input(frames)
            probs = await self._run(served, batch, ticket, tracker)
        digits = probs.argmax(axis=1)
        confidences = probs[np.arange(len(probs)), digits].tolist()
        results = [
            Classification(d, c, p, frame)
            for d, c, p, frame in zip(digits.tolist(), confidences, probs, frames, strict=True)
        ]
        return ClassifyResult(results, served.version)

    def _frames(self, images: Sequence[DigitImage]) -> np.ndarray:
        """The uint8 frames [N, 28, 28] the model is given, in the images' order."""
        frames: list[np.ndarray | None] = [None] * len(images)
        # Fast path for the common binary case (octet-stream, uint8 28×28): one vectorised
        # polarity check for the whole batch instead of a median per image.
        quick = [
            i
            for i, img in enumerate(images)
            if img.pixels is not None
            and img.pixels.dtype == np.uint8
            and img.pixels.shape == (28, 28)
        ]
        if quick:
            stack = np.stack([images[i].pixels for i in quick])  # type: ignore[misc]
            ready = frames_already_mnist(stack)
            if len(quick) == len(images) and ready.all():
                return stack  # every image already an MNIST frame: nothing more to do
            for i, ok in zip(quick, ready.tolist(), strict=True):
                if ok:
                    frames[i] = images[i].pixels
        for i, img in enumerate(images):
            if frames[i] is not None:
                continue
            try:
                if img.encoded is not None:
                    frames[i] = to_mnist_frame(decode_image(img.encoded, self.limits))
                elif img.pixels is not None:
                    frames[i] = to_mnist_frame(pixels_to_uint8(img.pixels))
                else:
                    raise ImageError("no image data")
            except ImageError as exc:
                raise InvalidInput(f"image {i}: {exc}") from exc
        return np.stack(frames)  # type: ignore[arg-type] # every slot is filled by now

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


def pixels_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """A 2-D pixel array → uint8 by the pixel-range rule (:mod:`mnist_contract.pixels`)."""
    if pixels.ndim != 2:
        raise ImageError(
            f"pixel array must be 2-D (height × width), got shape {list(pixels.shape)}"
        )
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageError(f"pixel array is empty (shape {list(pixels.shape)})")
    try:
        return to_uint8(pixels)
    except PixelError as exc:
        raise ImageError(str(exc)) from None
