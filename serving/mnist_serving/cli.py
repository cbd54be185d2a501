"""``mnist-serve``: run the gateway. Every setting is a flag and an ``MNIST_*`` variable.

mnist-serve                                   # models/ on 0.0.0.0:8080, LiteRT runtime
mnist-serve --model-dir /srv/models --rest-port 9000 --max-batch-size 128
MNIST_RUNTIME=savedmodel mnist-serve          # the SavedModel through TensorFlow
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Literal, get_args, get_origin

import uvicorn
from pydantic import ValidationError

from mnist_serving.app import build_app
from mnist_serving.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-serve",
        description="Serve the MNIST model over REST (TF Serving API + digits API).",
        epilog="Each flag can also be set as an environment variable: --max-batch-size → "
        "MNIST_MAX_BATCH_SIZE. Flags win.",
    )
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        # Docstrings use reST literals (``x``); a terminal shows them as plain x.
        help_text = (field.description or "").replace("``", "").replace("%", "%%")
        if field.annotation is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
            continue
        choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else None
        metavar = "JSON" if name in ("version_labels", "api_keys") else None
        parser.add_argument(
            flag,
            default=None,
            choices=choices,
            metavar=metavar,
            help=f"{help_text} (default: {_shown_default(name)})",
        )
    return parser


def _shown_default(name: str) -> str:
    """The default as a user would type it: lists comma-separated, secrets hidden."""
    if name == "api_keys":
        return "none"
    value = Settings.model_fields[name].get_default(call_default_factory=True)
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return "none" if value is None else str(value)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    for name in ("version_labels", "api_keys"):
        if name in overrides:
            overrides[name] = json.loads(overrides[name])
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        app = build_app(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        print(f"mnist-serve: invalid settings: {problems}", file=sys.stderr)
        return 2
    except (SettingsError, json.JSONDecodeError) as exc:
        print(f"mnist-serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.rest_port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    server = uvicorn.Server(config)
    _announce_when_started(server, settings, app)
    _drain_on_exit(server, app)
    server.run()
    return 0


def _drain_on_exit(server: uvicorn.Server, app: Any) -> None:
    """On SIGTERM/SIGINT, report not-ready at once; uvicorn then stops accepting, lets in-flight
    requests finish (up to ``timeout_graceful_shutdown``), and the lifespan stops gRPC with a
    grace period before the process exits 0."""
    original = server.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        app.state.core.draining = True
        original(sig, frame)
        # uvicorn re-raises a captured signal once it has shut down, so the process would end
        # "killed by SIGTERM"; the drain finished cleanly, and orchestrators expect exit 0.
        captured = getattr(server, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()

    server.handle_exit = handle_exit  # type: ignore[method-assign]


def _announce_when_started(server: uvicorn.Server, settings: Settings, app: Any) -> None:
    """Print the URLs (with the real port, when 0 was asked for) once the socket is bound."""
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        port = settings.rest_port
        if server.servers and server.servers[0].sockets:
            port = server.servers[0].sockets[0].getsockname()[1]
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        grpc_port = app.state.grpc_port
        grpc_text = f", gRPC {host}:{grpc_port}" if grpc_port else ", gRPC off"
        base = f"{'https' if settings.tls_cert_file else 'http'}://{host}:{port}"
        grpc_text += " (TLS)" if grpc_port and settings.tls_cert_file else ""
        print(
            f"mnist-serve: ready on {base}{grpc_text}  "
            f"(API docs {base}/docs, metrics {base}/metrics)",
            flush=True,
        )

    server.startup = startup  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main())
