"""The metrics that tell versions apart: each version's requests, latency, digits and
confidence, the shadow version's comparison with the serving one, and the automatic
rollout's state and decisions (docs/metrics.md; the rollout: docs/models.md).

The ``version`` label takes one value per version served since the process started: the
version policy bounds how many serve at once, and a restart forgets those retired.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from mnist_serving.observability.spec import LATENCY_BUCKETS, Spec

VERSION_SPECS = (
    Spec(
        "version_requests",
        Counter,
        "mnist_version_requests",
        "Inference requests by the version that answered (or was to answer) them, and code.",
        ("version", "code"),
    ),
    Spec(
        "version_latency",
        Histogram,
        "mnist_version_request_duration_seconds",
        "Inference request latency by the version that answered, failures included.",
        ("version",),
        LATENCY_BUCKETS,
    ),
    Spec(
        "version_predictions",
        Counter,
        "mnist_version_predictions",
        "Predicted digits by version and digit.",
        ("version", "digit"),
    ),
    Spec(
        "shadow_requests",
        Counter,
        "mnist_shadow_requests",
        "Requests mirrored to the shadow version, by outcome (compared, dropped, failed).",
        ("version", "outcome"),
    ),
    Spec(
        "shadow_images",
        Counter,
        "mnist_shadow_images",
        "Images the shadow version answered, by whether its digit agreed with the serving "
        "version's (agree, disagree).",
        ("version", "agreement"),
    ),
    Spec(
        "shadow_latency",
        Histogram,
        "mnist_shadow_duration_seconds",
        "The shadow version's own time per mirrored request (its model call).",
        ("version",),
        LATENCY_BUCKETS,
    ),
    Spec(
        "rollout_phase",
        Gauge,
        "mnist_rollout_phase",
        "1 for the automatic rollout's phase now (stable, shadow, canary, promoted, "
        "rolled_back), with the stable and candidate versions; --rollout auto only.",
        ("phase", "stable", "candidate"),
        mode="livemax",
    ),
    Spec(
        "rollout_weight",
        Gauge,
        "mnist_rollout_candidate_weight",
        "Share of unpinned requests the rollout's candidate answers now (0 in shadow).",
        mode="livemax",
    ),
    Spec(
        "rollout_decisions",
        Counter,
        "mnist_rollout_decisions",
        "The automatic rollout's decisions (started, advanced, promoted, rolled_back), and an "
        "operator's (paused, resumed, promoted, aborted).",
        ("decision",),
    ),
)
