"""The confidence histogram fed a batch at once: where values land, NaN left out."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mnist_serving.observability.collectors import BulkHistogram


def test_nan_confidences_are_left_out_of_the_histogram() -> None:
    registry = CollectorRegistry()
    histogram = BulkHistogram("h", "help", (0.5, 1.0), registry)
    histogram.observe_many(np.array([0.2, np.nan, 0.9], np.float32))
    assert registry.get_sample_value("h_count") == 2
    assert registry.get_sample_value("h_sum") == pytest.approx(1.1)


def test_a_few_confidences_land_where_many_do() -> None:
    # Up to FEW_VALUES values take a plain loop, more take numpy: both must agree with the
    # library's own observe, bucket edges and NaN included.
    from prometheus_client import Histogram

    from mnist_serving.observability.collectors import FEW_VALUES

    values = np.array([0.3, 0.5, 0.55, 0.999, 1.0, np.nan, 0.0, 0.95], np.float32)
    assert len(values) <= FEW_VALUES
    few, many, plain = CollectorRegistry(), CollectorRegistry(), CollectorRegistry()
    buckets = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
    BulkHistogram("h", "help", buckets, few).observe_many(values)
    BulkHistogram("h", "help", buckets, many).observe_many(np.tile(values, 2))
    reference = Histogram("h", "help", registry=plain, buckets=buckets)
    for value in values[~np.isnan(values)].tolist():
        reference.observe(value)
    for le in (*map(str, buckets), "+Inf"):
        want = plain.get_sample_value("h_bucket", {"le": le})
        assert few.get_sample_value("h_bucket", {"le": le}) == want, le
        assert many.get_sample_value("h_bucket", {"le": le}) == 2 * want, le
    assert few.get_sample_value("h_sum") == pytest.approx(plain.get_sample_value("h_sum"))
