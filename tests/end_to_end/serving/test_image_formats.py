"""Every image a person may send: formats, modes, EXIF orientation and transparency.

Each case draws a real MNIST test digit the way a person's file would hold it, then checks
two things: the frame the model sees matches the frame of a plain PNG of the same drawing, and
the gateway (in-process, real model) answers the right digit.
"""

from __future__ import annotations

import pytest
from PIL import Image

from mnist_contract.preprocess import image_format
from tests.helpers.drawings import CASES, DIGIT_INDEX, ink_of, paper, save

MEDIA_TYPE = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_gateway_reads_the_right_digit(case: str, api, digits) -> None:
    data = CASES[case](ink_of(digits))
    fmt = image_format(data)
    assert fmt is not None, case
    answer = await api.post(
        "/v1/digits:classify", content=data, headers={"Content-Type": MEDIA_TYPE[fmt]}
    )
    assert answer.status_code == 200, answer.text
    expected = int(digits["y_test"][DIGIT_INDEX])
    assert answer.json()["predictions"][0]["digit"] == expected, case


async def test_the_reference_drawing_is_read_right(api, digits) -> None:
    """Guards the cases above: the plain PNG of the chosen digit is classified correctly."""
    png = save(Image.fromarray(paper(ink_of(digits))), "PNG")
    answer = await api.post(
        "/v1/digits:classify", content=png, headers={"Content-Type": "image/png"}
    )
    assert answer.json()["predictions"][0]["digit"] == int(digits["y_test"][DIGIT_INDEX])
