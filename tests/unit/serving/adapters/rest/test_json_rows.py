"""The ``instances`` shortcut: exactly the usual path's tensor, or no answer at all."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_serving.adapters.rest import tfserving_codec as rest_codec
from mnist_serving.adapters.rest.json_body import loads
from mnist_serving.adapters.rest.json_rows import regular_shape, split_instances
from mnist_serving.errors import InvalidInput


@pytest.fixture(scope="module")
def frames(digits) -> np.ndarray:
    return (digits["x_test"][:16].astype(np.float32) / 255.0)[..., None]


def usual(body: bytes) -> np.ndarray:
    with np.errstate(over="ignore"):  # as rest_codec converts
        return np.array(orjson.loads(body)["instances"], dtype=np.float32)


def test_shape_from_brackets_alone() -> None:
    assert regular_shape(b"[[,],[,]]", 15) == (2, 2)
    assert regular_shape(b"[[[]],[[]]]", 15) == (2, 1, 1)
    assert regular_shape(b"[,,]", 15) == (3,)
    for ragged in (b"[[,],[]]", b"[[],[,]]", b"[]]", b"[],[]", b"[[]", b"", b"[[],,[]]"):
        assert regular_shape(ragged, 15) is None, ragged
    assert regular_shape(b"[[[]]]", 2) is None  # deeper than allowed: not even looked at


@pytest.mark.parametrize(
    "dump",
    [
        lambda doc: json.dumps(doc),
        lambda doc: json.dumps(doc, indent=2),
        lambda doc: json.dumps(doc, separators=(",", ":")),
        lambda doc: json.dumps({"signature_name": "serving_default", **doc}),
        lambda doc: json.dumps({**doc, "signature_name": "serving_default"}),
    ],
    ids=["spaces", "indented", "compact", "member-before", "member-after"],
)
def test_same_tensor_and_rest_as_the_usual_path(frames, dump) -> None:
    body = dump({"instances": frames.tolist()}).encode()
    split = split_instances(body, 16)
    assert split is not None, "an image body is what the shortcut is for"
    rest, values = split
    expected = usual(body)
    assert values.dtype == np.float32 and values.shape == expected.shape == (16, 28, 28, 1)
    assert np.array_equal(values, expected)
    assert orjson.loads(rest) == {**orjson.loads(body), "instances": 0}


def test_integers_exponents_and_signs_convert_as_orjson_reads_them(digits) -> None:
    pixels = digits["x_test"][:16].astype(np.int64).reshape(16, 784)
    text = json.dumps({"instances": pixels.tolist()})
    # A few spellings JSON allows, swapped in for some zeros: same values the usual path reads.
    long_integers = ("12345678901234567", "18446744073709551615", "123456789012345678901234567890")
    for spelling in ("-0", "0e0", "-0.0", "1E+2", "2.5e-3", "-7", "1e39", *long_integers):
        text = text.replace("[0, 0,", f"[{spelling}, 0,", 1)
    body = text.encode()
    _rest, values = split_instances(body, 16) or pytest.fail("shortcut declined")
    expected = usual(body)
    assert np.array_equal(values, expected, equal_nan=False)
    assert np.signbit(values).tolist() == np.signbit(expected).tolist()  # "-0" is 0, "-0.0" is -0.0
    assert np.isinf(values).sum() == 1  # 1e39 is beyond float32 there too: the core refuses it


def _with(frames, old: str, new: str) -> bytes:
    text = json.dumps({"instances": frames.tolist()})
    assert old in text
    return text.replace(old, new, 1).encode()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("0.0", ".5"),  # not JSON numbers
        ("0.0", "01"),
        ("0.0", "1."),
        ("0.0", "+1"),
        ("0.0", "1e"),
        ("0.0", "--1"),
        ("0.0", "1 2"),  # two numbers where one belongs
        ("0.0", "1e400"),  # beyond float64: orjson refuses it
        ("[0.0]", "[]"),  # an empty list
        ("[0.0]", "[0.0, 0.0]"),  # ragged
        ("[0.0]", "[[0.0]]"),  # deeper in one place
        ("[0.0], ", "[0.0]7, "),  # an element outside the innermost lists ("0.07" without
        ("[[0.0]", "[5[0.0]"),  # the brackets)
        ("[0.0], ", "[0.0] 7, "),
        ("0.0", "null"),
        ("0.0", '"0"'),
    ],
)
def test_anything_else_is_left_to_the_usual_path(frames, old, new) -> None:
    assert split_instances(_with(frames, old, new), 16) is None


@pytest.mark.parametrize(
    "instances",
    [
        np.random.default_rng(0).random((16, 28, 28, 1)),  # every value distinct
        np.zeros((1, 28, 28, 1)),  # one image
        np.array([[0.5]]),  # a body of a few bytes
        np.arange(12.0).reshape(2, 3, 2) - 6,  # another shape: the core names what is wrong
    ],
    ids=["random-floats", "one-image", "tiny", "other-shape"],
)
def test_any_regular_array_of_numbers_is_read(instances) -> None:
    body = json.dumps({"instances": instances.tolist()}).encode()
    _rest, values = split_instances(body, 16) or pytest.fail("shortcut declined")
    assert values.shape == instances.shape and np.array_equal(values, usual(body))


def test_bodies_it_does_not_read(frames) -> None:
    body = json.dumps({"instances": frames.tolist()}).encode()
    assert split_instances(body, max_depth=4) is None  # the usual path names the depth limit
    twice = body[:-1] + b', "x": {"instances": [1]}}'
    assert split_instances(twice, 16) is None
    after = body[:-1] + b', "y": [1]}'  # another member with brackets after the array
    assert split_instances(after, 16) is None


def test_loads_predict_checks_the_placeholder_is_the_top_level_member(frames) -> None:
    inner = json.dumps({"instances": frames.tolist()})
    nested = f'{{"instance": {inner}}}'.encode()  # "instances" inside another member
    with pytest.raises(InvalidInput, match="Missing 'inputs' or 'instances' key"):
        rest_codec.parse_predict(rest_codec.loads_predict(nested, 16))
    doc = rest_codec.loads_predict(inner.encode(), 16)
    assert isinstance(doc["instances"], np.ndarray)
    _signature, inputs, rows = rest_codec.parse_predict(doc)
    assert rows and np.array_equal(inputs["images"], frames)


def test_a_malformed_large_body_gets_the_usual_message(frames) -> None:
    with pytest.raises(InvalidInput, match="malformed JSON"):
        rest_codec.loads_predict(_with(frames, "0.0", ".5"), 16)
    with pytest.raises(InvalidInput, match="rows of different lengths"):
        rest_codec.parse_predict(rest_codec.loads_predict(_with(frames, "[0.0]", "[]"), 16))
    with pytest.raises(InvalidInput, match="deeper than 4"):
        rest_codec.loads_predict(json.dumps({"instances": frames.tolist()}).encode(), 4)


@settings(max_examples=300, deadline=None, database=None)
@given(
    data=st.data(),
    cut=st.integers(0, 6),
    insert=st.text(alphabet="0123456789.-+eE[], \n", max_size=6),
)
def test_an_edited_body_reads_as_the_usual_path_reads_it(digits, data, cut, insert) -> None:
    """Any edit of an image body: the shortcut's document is the usual path's, or both refuse."""
    text = json.dumps({"instances": (digits["x_test"][:16] / 255.0)[..., None].tolist()})
    at = data.draw(st.integers(text.index("["), len(text) - 1))
    body = (text[:at] + insert + text[at + cut :]).encode()
    try:
        usual_doc = loads(body, 16)
        expected = rest_codec.parse_predict(usual_doc)[1]["images"]
    except InvalidInput:
        expected = None
    try:
        doc = rest_codec.loads_predict(body, 16)
        got = rest_codec.parse_predict(doc)[1]["images"]
    except InvalidInput:
        got = None
    assert (got is None) == (expected is None)
    if got is not None:
        assert got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True)


def test_an_element_moved_out_of_its_list_beside_an_empty_one_is_declined(frames) -> None:
    """``[0.0], 0[], [0.0]``: the structure and the count are an image's, the JSON is not
    (found by the edit test above)."""
    one = json.dumps({"instances": frames[:1].tolist()})
    body = one.replace("[0.0], [0.0]", "[0.0], 0[]", 1).encode()
    assert body != one.encode()
    assert split_instances(body, 16) is None
    with pytest.raises(InvalidInput):
        rest_codec.parse_predict(rest_codec.loads_predict(body, 16))


def test_a_deep_body_is_declined_and_the_usual_path_names_the_limit() -> None:
    """8,000 levels open, then many numbers."""
    body = b'{"instances": ' + b"[" * 8000 + b"1," * 20000 + b"1" + b"]" * 8000 + b"}"
    assert split_instances(body, 16) is None
    with pytest.raises(InvalidInput, match="deeper than 16"):
        rest_codec.loads_predict(body, 16)


def test_an_escaped_second_key_leaves_the_body_to_the_usual_path(frames) -> None:
    """``"\\u0069nstances"`` is a second "instances" key that orjson keeps (the last one wins),
    which a search for the literal key cannot see."""
    body = json.dumps({"instances": frames.tolist()}).encode()[:-1] + b', "\\u0069nstances": 0}'
    assert orjson.loads(body)["instances"] == 0
    assert split_instances(body, 16) is None
    with pytest.raises(InvalidInput, match="must be a JSON array"):
        rest_codec.parse_predict(rest_codec.loads_predict(body, 16))
