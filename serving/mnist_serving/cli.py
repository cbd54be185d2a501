"""``mnist-serve``: run the gateway. Every setting is a flag and an ``MNIST_*`` variable.

mnist-serve                                   # models/ on 0.0.0.0:8080, LiteRT runtime
mnist-serve --model-dir /srv/models --rest-port 9000 --max-batch-size 128
MNIST_RUNTIME=savedmodel mnist-serve          # the SavedModel through TensorFlow
mnist-serve --workers 4                       # four processes on the same ports
mnist-serve --rollout auto                    # every new version rolled out by its gates
mnist-serve rollout status                    # a running gateway's rollout (pause, resume,
                                              # promote, abort: a key with the admin scope)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError

from mnist_serving import rollout_command
from mnist_serving.build import build_gateway
from mnist_serving.errors import StartupError
from mnist_serving.lifecycle.cpus import decided_for, usable_cpus
from mnist_serving.lifecycle.gateway import run
from mnist_serving.lifecycle.supervisor import Supervisor
from mnist_serving.model_config import VersionPolicy
from mnist_serving.observability.access_log import configure_logging
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
    if isinstance(value, VersionPolicy):
        return value.describe()
    return "none" if value is None else str(value)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    for name in ("version_labels", "api_keys"):
        if name in overrides:
            overrides[name] = json.loads(overrides[name])
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["rollout"]:  # an operator's command to a running gateway
        return rollout_command.main(given[1:])
    args = build_parser().parse_args(given)
    try:
        settings = decided_for(settings_from(args), usable_cpus())
        sink = configure_logging(settings.log_level, settings.access_log)
        if isinstance(settings.workers, int) and settings.workers > 1:
            return Supervisor(settings, build_gateway).run()
        gateway = build_gateway(settings, access_sink=sink)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        print(f"mnist-serve: invalid settings: {problems}", file=sys.stderr)
        return 2
    except (SettingsError, json.JSONDecodeError) as exc:
        print(f"mnist-serve: {exc}", file=sys.stderr)
        return 2
    try:
        return run(gateway)
    except StartupError as exc:
        print(f"mnist-serve: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
