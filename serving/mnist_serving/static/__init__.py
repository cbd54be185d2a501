"""The demo page, shipped inside the package (no CDN, no network fetch: it works offline)."""

from importlib.resources import files

DEMO_HTML = (files(__name__) / "index.html").read_text(encoding="utf-8")
