"""CORS, off by default: a page on an allowed origin calls the API from a real browser (Debian's
chromium, headless, through Playwright) and reads the answer; a page on any other origin is
refused by the browser, because the gateway sends it no CORS headers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from tests.end_to_end.browser.test_demo_page import browser  # noqa: F401 - the shared browser
from tests.helpers.processes import Server, free_port, run_gateway, start_gateway, stop_gateway

PAGE = """<!doctype html><meta charset="utf-8"><title>another origin</title>
<script>
async function classify(gateway) {
  try {
    const r = await fetch(gateway + "/v1/digits:classify", {
      method: "POST",
      headers: {"Content-Type": "application/octet-stream", "X-API-Key": "none"},
      body: new Uint8Array(784),
    });
    const answer = await r.json();
    return {status: r.status, id: r.headers.get("X-Request-ID"), digits: answer.predictions.length};
  } catch (e) {
    return {error: String(e)};
  }
}
</script>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[int]:
    """A page served on another port: http://127.0.0.1:<port> and http://localhost:<port> are
    two origins."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "index.html").write_text(PAGE)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gateway(model_dir, site) -> Iterator[Server]:
    server = start_gateway(model_dir, "--cors-allow-origins", f"http://127.0.0.1:{site}")
    yield server
    stop_gateway(server)


def _call_from(browser, origin: str, gateway: Server) -> dict:  # noqa: F811
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(origin + "/index.html")
        return dict(page.evaluate("url => classify(url)", gateway.url))
    finally:
        context.close()


def test_a_page_on_an_allowed_origin_calls_the_api(browser, gateway, site) -> None:  # noqa: F811
    answer = _call_from(browser, f"http://127.0.0.1:{site}", gateway)
    assert answer["status"] == 200 and answer["digits"] == 1, answer
    assert len(answer["id"]) == 32  # an exposed header the page can read


def test_a_page_on_another_origin_is_refused(browser, gateway, site) -> None:  # noqa: F811
    answer = _call_from(browser, f"http://localhost:{site}", gateway)
    assert "Failed to fetch" in answer.get("error", ""), answer


def test_the_headers_go_only_to_allowed_origins(gateway, site, model_dir) -> None:
    allowed, other = f"http://127.0.0.1:{site}", f"http://localhost:{site}"
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
    preflight = httpx.options(
        gateway.url + "/v1/digits:classify", headers={"Origin": allowed, **ask}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == allowed
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    refused = httpx.options(gateway.url + "/v1/digits:classify", headers={"Origin": other, **ask})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    simple = httpx.get(gateway.url + "/readyz", headers={"Origin": other})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
    wildcard = run_gateway(
        model_dir, "--cors-allow-origins", "*", "--cors-allow-credentials", timeout=60
    )
    assert wildcard.returncode == 2 and "list the origins instead" in wildcard.stderr


def test_cors_is_off_by_default(model_dir, site) -> None:
    server = start_gateway(model_dir)
    try:
        origin = {"Origin": f"http://127.0.0.1:{site}", "Access-Control-Request-Method": "POST"}
        preflight = httpx.options(server.url + "/v1/digits:classify", headers=origin)
        assert (
            preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers
        )
    finally:
        stop_gateway(server)
