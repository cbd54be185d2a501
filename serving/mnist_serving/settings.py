"""The gateway's one settings object: flags override ``MNIST_*`` environment variables.

Built once at start, validated, and passed into constructors (never imported as a global), so
a test can run two gateways side by side with different settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mnist_contract.layout import model_base
from mnist_contract.model import MODEL_NAME
from mnist_serving.model_config import ModelConfig, ModelConfigError, VersionPolicy

# Routes that are not the inference APIs; with API keys on, those not listed in open_routes
# need a key too.
OPERATIONAL_ROUTES = ("healthz", "readyz", "metrics", "docs", "demo", "stats")


def _policy(value: object) -> object:
    return VersionPolicy.parse(value) if isinstance(value, str) else value


Policy = Annotated[
    VersionPolicy, NoDecode, BeforeValidator(_policy), PlainSerializer(VersionPolicy.describe)
]


def _count_or_auto(most: int) -> BeforeValidator:
    """A whole number from 1 to ``most``, or ``auto``, with one message for anything else."""

    def parse(value: object) -> object:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if isinstance(value, int | str) and text.isdigit() and 1 <= int(text) <= most:
            return int(text)
        raise ValueError(f"a whole number from 1 to {most}, or auto (got {value!r})")

    return BeforeValidator(parse)


# A count, or "auto" (decided from the CPUs this process may use, :mod:`mnist_serving.lifecycle.cpus`).
Workers = Annotated[int | Literal["auto"], _count_or_auto(256)]
Threads = Annotated[int | Literal["auto"], _count_or_auto(64)]


class SettingsError(ValueError):
    """A setting is unusable; the message says which and how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MNIST_", extra="forbid", frozen=True, use_attribute_docstrings=True
    )

    model_dir: Path = Path("models")
    """Base folder; versions are read from ``<model_dir>/mnist/<N>/``."""
    backend: Literal["local", "tfserving"] = "local"
    """Where inference runs: ``local`` (in this process) or ``tfserving`` (forwarded over gRPC)."""
    tfserving_targets: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1:8500"]
    )
    """TF Serving gRPC targets for ``backend=tfserving`` (env: JSON list or comma-separated)."""
    tfserving_timeout_ms: int = Field(5000, ge=10, le=600_000)
    """Deadline of one forwarded call, retries included."""
    tfserving_model_name: str = MODEL_NAME
    """Model name on the TF Serving side."""
    runtime: Literal["litert", "savedmodel"] = "litert"
    """Local runtime: the LiteRT flatbuffer (fast, no TensorFlow) or the SavedModel via TF."""
    precision: Literal["int8", "fp32"] = "int8"
    """Which LiteRT file serves a version: int8 (the quantised one, when the version has one
    that passed its export checks; else the float one) or fp32."""
    host: str = "0.0.0.0"
    """Interface the servers bind to."""
    rest_port: int = Field(8080, ge=0, le=65535)
    """REST port (0 picks a free one)."""
    grpc_port: int = Field(8081, ge=-1, le=65535)
    """gRPC port (0 picks a free one, -1 turns gRPC off)."""
    grpc_max_message_bytes: int = Field(64 * 1024 * 1024, ge=4 * 1024 * 1024)
    """Largest gRPC message received or sent (4 MiB is gRPC's default; 1,024 images need ~3.2 MB)."""
    grpc_tensor_content: bool = False
    """Answer Predict tensors in ``tensor_content`` instead of ``float_val`` (TF Serving's flag)."""

    max_batch_size: int = Field(256, ge=1, le=4096)
    """Most images merged into one model call (TF Serving's ``max_batch_size``)."""
    batch_timeout_micros: int = Field(500, ge=0, le=1_000_000)
    """How long the first request of a batch may wait for company (TF Serving's name)."""
    max_enqueued_batches: int = Field(16, ge=1)
    """Queue bound, in batches of ``max_batch_size`` images; past it requests get 503 at once."""
    num_batch_threads: int = Field(1, ge=1, le=64)
    """Model calls that may run at once, each on its own interpreter."""
    runtime_threads: Threads = "auto"
    """Threads each LiteRT interpreter uses inside one model call (auto: the CPUs each worker
    has to itself, at most 4)."""
    workers: Workers = "auto"
    """Gateway processes serving the same ports (auto: one per usable CPU, from the affinity
    mask and the cgroup CPU quota); each has its own model and batcher."""

    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    """Largest request body accepted (after gzip decompression); beyond it: 413."""
    max_images_per_request: int = Field(1024, ge=1)
    """Most images (or examples) in one request."""
    max_image_side: int = Field(4096, ge=28)
    """Largest width or height of an uploaded image, checked before decoding."""
    max_image_pixels: int = Field(16_777_216, ge=784)
    """Largest width × height of an uploaded image, checked before decoding."""
    max_in_flight_requests: int = Field(1024, ge=0)
    """Predict/classify requests in progress at once; beyond it 503 at once (0: no cap)."""
    queue_target_ms: float = Field(20.0, ge=0, le=60_000)
    """Longest admitted requests should wait for their model call; once even the shortest wait
    stays above it for 100 ms, new inference requests past a concurrency limit get 503 +
    Retry-After on arrival, before their body is read (0: off)."""
    max_json_depth: int = Field(16, ge=6, le=512)
    """Deepest nesting of arrays and objects accepted in a JSON body."""
    request_timeout_ms: int = Field(30_000, ge=10, le=3_600_000)
    """Longest a request may take in the gateway; beyond it 504 / DEADLINE_EXCEEDED."""
    tls_cert_file: Path | None = None
    """PEM certificate (chain) for TLS on REST and gRPC; needs ``tls_key_file`` too."""
    tls_key_file: Path | None = None
    """PEM private key matching ``tls_cert_file``."""
    tls_client_ca_file: Path | None = None
    """PEM CA certificate(s) that client certificates must chain to: mutual TLS on REST and
    gRPC (needs ``tls_cert_file``)."""
    tls_client_auth: Literal["required", "optional"] = "required"
    """With ``tls_client_ca_file``: refuse a client without a valid certificate (required), or
    let it in without one (optional, REST only: gRPC can ask for a certificate only by
    requiring it, so it asks for none); a certificate that is sent must be valid either way."""
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Web origins (``https://tool.example.com``) whose pages may call the REST API from a
    browser, comma-separated; ``*`` for any origin, never with credentials (empty: CORS off)."""
    cors_allow_credentials: bool = False
    """Let allowed origins' pages send credentials (cookies, TLS client certificates) too."""
    header_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    """Longest a client may take to send a request's headers, from its connection (or from
    the first byte of a kept-alive connection's next request); past it the connection is
    closed, with 408 when part of a request came. On gRPC: the TLS and HTTP/2 handshake's
    limit."""
    max_connections: int = Field(4096, ge=1, le=1_000_000)
    """Open client connections per worker process, on each of REST and gRPC; past it a new
    connection is refused at once (REST: 503 and closed)."""
    version_policy: Policy = VersionPolicy()
    """Versions to serve: ``latest:N`` (the N newest), ``all``, or ``specific:3,4``."""
    version_labels: dict[str, int] = Field(default_factory=dict)
    """Version labels, e.g. ``{"stable": 3}`` (env: ``MNIST_VERSION_LABELS='{"stable": 3}'``)."""
    canary_weight: float = Field(0.0, ge=0.0, le=1.0)
    """Share of requests naming no version sent to the ``canary`` label's version."""
    rollout: Literal["off", "auto"] = "off"
    """``auto``: every new version becomes the candidate, tried in shadow, then on growing
    canary shares, and promoted to ``stable`` or rolled back by its gates (local backend)."""
    shadow_weight: float = Field(0.0, ge=0.0, le=1.0)
    """Share of inference requests also mirrored to the ``shadow`` label's version: its
    answers are compared with the ones clients get, never returned."""
    model_config_file: Path | None = None
    """JSON file with version_policy, labels, canary_weight and shadow_weight; re-read when it
    changes."""
    model_poll_seconds: float = Field(2.0, ge=0.0)
    """How often the model folder, the model config file and the API keys file are checked
    for changes (0: never)."""
    api_keys_file: Path | None = None
    """File of ``name:key`` lines; with any key configured, the APIs need one."""
    api_keys: dict[str, str] = Field(default_factory=dict, repr=False)
    """API keys as JSON ``{"name": "key"}`` (env ``MNIST_API_KEYS``); never logged."""
    rate_limit_per_second: float = Field(0.0, ge=0)
    """Requests per second allowed per key (0: no limit); beyond it 429 / RESOURCE_EXHAUSTED."""
    rate_limit_burst: int = Field(20, ge=1)
    """Requests a key may send at once before the per-second rate applies."""
    open_routes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(OPERATIONAL_ROUTES)
    )
    """Operational routes that need no key when keys are on (healthz, readyz, metrics, docs, demo, stats)."""
    warmup: bool = True
    """Replay the version's warm-up records before reporting ready."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """How much the gateway logs."""
    access_log: Literal["text", "json", "off"] = "text"
    """One line per request (text, or one JSON object per line); the gateway's other log lines
    follow the same format (json for json)."""
    access_log_probes: bool = False
    """Also log health probes, /metrics and the other operational routes."""
    sample_dir: Path | None = None
    """Write a sample of the inputs (28×28 frames with prediction, confidence, version, time,
    request id) here, for monitoring and retraining."""
    sample_rate: float = Field(0.01, ge=0.0, le=1.0)
    """Share of images kept in --sample-dir."""
    sample_below_confidence: float = Field(0.9, ge=0.0, le=1.0)
    """Images the model is less sure of than this are always kept (its confidence is
    calibrated: below 0.9 are about 1% of clean digits' answers and most of its mistakes)."""
    sample_max_mb: float = Field(100.0, gt=0)
    """--sample-dir is kept under this size; the oldest shards go first."""
    drift_window_images: int = Field(2048, ge=0, le=16384)
    """Input drift: the newest served images each score reads (0: drift off)."""
    drift_max_age_seconds: float = Field(600.0, gt=0)
    """Input drift: images older than this leave the window, however few remain."""
    drift_threshold: float = Field(0.5, gt=0)
    """Input drift: the overall score (the largest feature's PSI) past which the alarm is
    raised, once the window holds 500 images (or is full, if smaller)."""
    ready_file: Path | None = None
    """Once serving, write this JSON file with the bound REST and gRPC ports (removed on exit)."""

    @field_validator("open_routes", mode="before")
    @classmethod
    def _split_routes(cls, value: object) -> object:
        if isinstance(value, str):
            return [r.strip() for r in value.split(",") if r.strip()]
        return value

    @field_validator("open_routes")
    @classmethod
    def _known_routes(cls, routes: list[str]) -> list[str]:
        unknown = sorted(set(routes) - set(OPERATIONAL_ROUTES))
        if unknown:
            raise ValueError(f"unknown route(s) {unknown}; choose from {list(OPERATIONAL_ROUTES)}")
        return routes

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins_look_like_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            scheme, _, rest = origin.partition("://")
            if origin != "*" and (scheme not in ("http", "https") or not rest or "/" in rest):
                raise ValueError(
                    f"CORS origin {origin!r} is not scheme://host[:port] (no path), nor *"
                )
        return origins

    @field_validator("tfserving_targets", "cors_allow_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """A comma-separated string (a flag, an environment variable) or a JSON list."""
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("tfserving_targets")
    @classmethod
    def _targets_look_like_host_port(cls, targets: list[str]) -> list[str]:
        if not targets:
            raise ValueError("give at least one TF Serving target (host:port)")
        for target in targets:
            host, _, port = target.rpartition(":")
            if not host or not (port.isascii() and port.isdigit()):
                raise ValueError(f"target {target!r} is not host:port")
        return targets

    @model_validator(mode="after")
    def _model_config_holds(self) -> Settings:
        """Labels and canary by the same rule as the config file (a file, when given, is read
        at start and brings its own canary share)."""
        try:
            self.model_config_defaults()
        except ModelConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS needs both tls_cert_file and tls_key_file")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("mutual TLS (tls_client_ca_file) needs tls_cert_file and tls_key_file")
        return self

    @model_validator(mode="after")
    def _rollout_runs_the_versions_itself(self) -> Settings:
        if self.rollout == "auto" and self.backend != "local":
            raise ValueError(
                "rollout auto needs backend local: behind TF Serving the gateway forwards to "
                "the one version TF Serving's replicas serve, so it cannot split or mirror"
            )
        return self

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise ValueError(
                "cors_allow_origins '*' with cors_allow_credentials would let every site "
                "call the API with its visitors' credentials; list the origins instead"
            )
        return self

    @model_validator(mode="after")
    def _batch_bounds(self) -> Settings:
        if self.max_images_per_request > self.max_batch_size * self.max_enqueued_batches:
            raise ValueError(
                f"max_images_per_request ({self.max_images_per_request}) exceeds the queue "
                f"(max_batch_size × max_enqueued_batches = "
                f"{self.max_batch_size * self.max_enqueued_batches}); such requests could never fit"
            )
        return self

    @property
    def model_base(self) -> Path:
        return model_base(self.model_dir)

    def model_config_defaults(self) -> ModelConfig:
        """The policy, labels and canary share given as settings."""
        file = self.model_config_file is not None  # the file brings its own weights
        canary, shadow = (0.0, 0.0) if file else (self.canary_weight, self.shadow_weight)
        return ModelConfig(self.version_policy, dict(self.version_labels), canary, shadow)
