"""The version policy and the model config file: TF Serving's selections, errors that name the
problem."""

from __future__ import annotations

import json

import pytest

from mnist_serving.model_config import (
    ModelConfigError,
    VersionPolicy,
    parse_model_config,
    read_model_config,
)


@pytest.mark.parametrize(
    ("text", "available", "selected"),
    [
        ("latest:1", [1, 2, 3], {3}),
        ("latest:2", [1, 5, 3], {3, 5}),
        ("all", [1, 2], {1, 2}),
        ("specific:2,9", [1, 2, 3], {2}),
    ],
)
def test_version_policies_select_like_tf_serving(text, available, selected) -> None:
    assert VersionPolicy.parse(text).select(available) == selected


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"version_policy": {"latest": 0}}, "positive whole numbers"),
        ({"version_policy": {"newest": 1}}, "is not understood"),
        ({"labels": {"stable": "one"}}, "must map to a version number"),
        ({"canary_weight": 0.2, "labels": {"stable": 1}}, "no 'canary' label"),
        ({"canary_weight": 2, "labels": {"canary": 1}}, "between 0 and 1"),
        ({"label": {}}, "unknown key(s) label"),
    ],
)
def test_config_file_errors_name_the_problem(tmp_path, doc, message) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelConfigError, match=None) as err:
        read_model_config(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_shadow_share_needs_a_shadow_label(tmp_path) -> None:
    path = tmp_path / "config.json"
    good = b'{"labels": {"stable": 1, "shadow": 2}, "shadow_weight": 0.5}'
    assert parse_model_config(good, path).shadow_weight == 0.5
    with pytest.raises(ModelConfigError, match="no 'shadow' label says where"):
        parse_model_config(b'{"shadow_weight": 0.5}', path)
    with pytest.raises(ModelConfigError, match="shadow_weight must be between 0 and 1"):
        parse_model_config(b'{"labels": {"shadow": 2}, "shadow_weight": 2}', path)
    with pytest.raises(ModelConfigError, match="shadow_weight must be a number"):
        parse_model_config(b'{"labels": {"shadow": 2}, "shadow_weight": "half"}', path)
