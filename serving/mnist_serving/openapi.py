"""Request-body schemas for the OpenAPI document, and a self-contained ``/docs`` page.

The handlers parse bodies themselves (several content types, TF Serving's exact errors), so the
schemas are declared here rather than inferred. The docs page renders ``/openapi.json`` with a
few lines of script: no CDN, it works offline.
"""

from __future__ import annotations

from typing import Any

from mnist_client.preprocess import MEDIA_TYPES

_PIXELS = {
    "type": "array",
    "description": "A 2-D pixel array (28×28 is used as is). All integers: 0-255. "
    "Any number written with a decimal point: every value must be 0.0-1.0.",
    "items": {"type": "array", "items": {"type": "number"}},
}
_B64 = {
    "type": "object",
    "required": ["b64"],
    "properties": {
        "b64": {
            "type": "string",
            "description": "base64 image file (PNG, JPEG, WebP, GIF, BMP or TIFF), any size",
        }
    },
    "additionalProperties": False,
}

CLASSIFY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "additionalProperties": False,
                    "properties": {
                        "images": {"type": "array", "items": {"oneOf": [_PIXELS, _B64]}},
                        "top_k": {"type": "integer", "minimum": 0, "maximum": 10},
                        "return_preprocessed": {"type": "boolean"},
                        "version": {
                            "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
                            "description": "version number or label",
                        },
                    },
                }
            },
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary", "description": "N×784 uint8"}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
        },
    }
}

PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "Exactly one of instances (row format) or inputs (columnar).",
                    "properties": {
                        "signature_name": {
                            "type": "string",
                            "enum": ["serving_default", "predict_images"],
                        },
                        "instances": {"type": "array"},
                        "inputs": {"oneOf": [{"type": "array"}, {"type": "object"}]},
                    },
                }
            }
        },
    }
}

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MNIST digit service: API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#111}
code,pre{background:#f3f3f3;padding:.1em .3em}pre{padding:1em;overflow:auto}
h2{border-bottom:1px solid #ccc}.m{font-weight:bold;display:inline-block;width:4em}</style></head>
<body><h1>MNIST digit service</h1><p>The machine-readable schema is at
<a href="/openapi.json">/openapi.json</a>.</p><div id="api">Loading…</div>
<script>
fetch("/openapi.json").then(r => r.json()).then(spec => {
  const out = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const esc = s => String(s ?? "").replace(/[&<>]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;"}[c]));
      out.push(`<h2><span class="m">${method.toUpperCase()}</span><code>${esc(path)}</code></h2>`);
      out.push(`<p>${esc(op.summary)} ${esc(op.description)}</p>`);
      const body = op.requestBody && op.requestBody.content;
      if (body) out.push(`<pre>${esc(JSON.stringify(body, null, 2))}</pre>`);
    }
  }
  document.getElementById("api").innerHTML = out.join("\\n");
});
</script></body></html>
"""
