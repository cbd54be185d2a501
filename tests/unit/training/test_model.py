"""The architecture is the seed's, and the summary's arithmetic matches Keras's own count."""

from __future__ import annotations

from mnist_training.cli import main
from mnist_training.model import ARCHITECTURE, build_model, explain_layers, total_params


def test_parameter_count_is_the_seeds() -> None:
    assert total_params() == 104_202
    assert build_model(seed=1).count_params() == 104_202


def test_explained_layers_match_keras_layer_by_layer() -> None:
    model = build_model(seed=1)
    rows = explain_layers()
    assert len(rows) == len(model.layers) == len(ARCHITECTURE)
    for row, layer in zip(rows, model.layers, strict=True):
        assert row.params == layer.count_params(), row.name
        assert tuple(layer.output.shape[1:]) == row.output_shape, row.name


def test_layer_kinds_and_shapes() -> None:
    kinds = [type(layer).__name__ for layer in build_model(seed=1).layers]
    assert kinds == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "Flatten",
        "Dense",
    ]
    assert [r.output_shape for r in explain_layers()] == [
        (26, 26, 32),
        (13, 13, 32),
        (11, 11, 64),
        (5, 5, 64),
        (3, 3, 128),
        (1152,),
        (10,),
    ]


def test_summary_command_spells_out_the_arithmetic(capsys) -> None:
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "3×3 kernel × 32 input channels × 64 filters + 64 biases = 18,432 + 64" in out
    assert "1,152 inputs × 10 units + 10 biases = 11,520 + 10" in out
    assert out.count("none:") == 3  # two pooling layers and flatten, each says why
    assert "104,202" in out
