"""The demo page in a real browser (Debian's chromium, driven headless by Playwright)."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.processes import Server, start_gateway, stop_gateway

CHROMIUM = os.environ.get("MNIST_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[3] / "artifacts" / "demo-page.png"


@pytest.fixture(scope="module")
def gateway(model_dir) -> Iterator[Server]:
    srv = start_gateway(model_dir, "--max-image-side", "1000")
    yield srv
    stop_gateway(srv)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"{CHROMIUM} missing: apt-get install chromium"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, gateway):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(gateway.url) else outside.append(r.url))
    page.goto(gateway.url + "/")
    yield page
    context.close()
    assert outside == [], f"the page fetched from outside the gateway: {outside}"


def _wait_answer(page, previous_state: str | None = None) -> str:
    page.wait_for_function(
        "document.body.dataset.state === 'answered' || document.body.dataset.state === 'error'"
    )
    return page.inner_text("#digit")


def test_drawn_mnist_digits_are_recognised(page, digits) -> None:
    """Twenty real test digits (every class) painted onto the canvas, classified by the page."""
    x, y = digits["x_test"], digits["y_test"]
    picks = [int(np.flatnonzero(y == d)[k]) for k in range(2) for d in range(10)]
    right = 0
    for i in picks:
        page.evaluate("document.body.dataset.state = 'busy'")
        page.evaluate("frame => window.mnistDemo.paintFrame(frame)", x[i].tolist())
        page.wait_for_function("document.body.dataset.state === 'answered'")
        right += page.inner_text("#digit") == str(y[i])
        bars = page.locator("#bars .bar").count()
        assert bars == 10
    assert right >= 17, f"{right} of {len(picks)} right"  # the fixture model is ~95% accurate
    assert "Model version 1" in page.inner_text("#meta") and "round trip" in page.inner_text(
        "#meta"
    )
    seen = page.evaluate(
        "Array.from(document.getElementById('seen').getContext('2d').getImageData(0,0,28,28).data).filter((v,i)=>i%4===0)"
    )
    assert np.array(seen).reshape(28, 28).max() > 200  # the model's-eye view was drawn


def test_a_stroke_drawn_with_the_mouse(page) -> None:
    box = page.locator("#pad").bounding_box()
    assert box is not None
    cx, top = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15
    page.mouse.move(cx, top)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(cx, top + step * box["height"] * 0.035)
    page.mouse.up()
    assert _wait_answer(page) == "1"


def test_upload_clear_and_a_refusal(page, digits, tmp_path) -> None:
    scan = Image.fromarray(255 - digits["x_test"][0]).resize((140, 140))
    path = tmp_path / "seven.png"
    scan.save(path)
    page.set_input_files("#file", str(path))
    assert _wait_answer(page) == str(digits["y_test"][0])

    page.keyboard.press("Escape")
    page.wait_for_function("document.body.dataset.state === 'cleared'")
    assert page.inner_text("#digit") == "–" and page.locator("#bars .bar").count() == 0

    big = io.BytesIO()
    Image.new("L", (1200, 40), 255).save(big, format="PNG")  # over the gateway's 1000-pixel side
    bad = tmp_path / "too-wide.png"
    bad.write_bytes(big.getvalue())
    page.set_input_files("#file", str(bad))
    page.wait_for_function("document.body.dataset.state === 'error'")
    assert "1200×40 pixels" in page.inner_text("#error")


def test_live_panel_and_small_screens(browser, gateway, digits) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, device_scale_factor=2, has_touch=True
    )
    page = context.new_page()
    page.goto(gateway.url + "/")
    page.evaluate("frame => window.mnistDemo.paintFrame(frame)", digits["x_test"][1].tolist())
    page.wait_for_function("document.body.dataset.state === 'answered'")
    page.wait_for_function("document.getElementById('rps').textContent !== '–'", timeout=5000)
    page.wait_for_function(
        "document.getElementById('p99').textContent.endsWith('ms')", timeout=5000
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the page scrolls sideways on a phone"
    pad = page.locator("#pad").bounding_box()
    assert pad is not None and pad["width"] <= 375
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT.with_name("demo-phone.png")), full_page=True)
    context.close()


def test_screenshot_for_the_readme(page, digits) -> None:
    page.evaluate("frame => window.mnistDemo.paintFrame(frame)", digits["x_test"][0].tolist())
    page.wait_for_function("document.body.dataset.state === 'answered'")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


def test_with_api_keys_on_the_page_asks_for_a_key_and_uses_it(browser, model_dir, digits) -> None:
    key = "demo-key-0123456789abcdef"
    secured = start_gateway(model_dir, env={"MNIST_API_KEYS": f'{{"demo": "{key}"}}'})
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = context.new_page()
        page.goto(secured.url + "/")  # the page itself is an open route by default
        frame = digits["x_test"][0].tolist()
        page.evaluate("frame => window.mnistDemo.paintFrame(frame)", frame)
        page.wait_for_function("document.body.dataset.state === 'error'")
        assert "needs an API key" in page.inner_text("#error")
        assert page.evaluate("document.getElementById('keybox').open")
        page.fill("#key", key)
        page.dispatch_event("#key", "change")
        page.evaluate("frame => window.mnistDemo.paintFrame(frame)", frame)
        page.wait_for_function("document.body.dataset.state === 'answered'")
        assert page.inner_text("#digit") == str(digits["y_test"][0])
        assert page.evaluate("sessionStorage.getItem('mnist-api-key')") == key
    finally:
        context.close()
        stop_gateway(secured)
