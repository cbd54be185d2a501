"""The one start-up step that touches the outside world before a gateway is built.

Settings are pure data; this reads what they point at, once: the API keys, the model config
file, the TLS files, and whether a model is there at all. Every problem is a
:class:`SettingsError` naming the file or setting and how to fix it; the typed parts go to
the constructors.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from mnist_contract.layout import version_dirs
from mnist_serving.core.access_control import KeyFileError, load_scoped_keys
from mnist_serving.lifecycle.tls import Tls, rest_context
from mnist_serving.model_config import ModelConfigError, read_model_config
from mnist_serving.repositories.local import ConfigSource
from mnist_serving.settings import Settings, SettingsError


@dataclass(frozen=True)
class StartupParts:
    keys: dict[str, str]
    scopes: dict[str, frozenset[str]]
    model_config: ConfigSource
    tls: Tls | None


def prepare(settings: Settings) -> StartupParts:
    """Read and check everything the settings name; raise :class:`SettingsError` if unusable."""
    if settings.backend == "local":
        check_model_present(settings)
    try:
        scoped = load_scoped_keys(settings.api_keys_file, settings.api_keys)
    except KeyFileError as exc:
        raise SettingsError(str(exc)) from None
    keys = {name: key for name, (key, _) in scoped.items()}
    scopes = {name: granted for name, (_, granted) in scoped.items()}
    return StartupParts(keys, scopes, _model_config(settings), _tls(settings))


def check_model_present(settings: Settings) -> None:
    """Fail at start, naming the path looked at and how to make a model there."""
    base = settings.model_base.resolve()
    if not version_dirs(base):
        raise SettingsError(
            f"no model version found under {base} (looked for numbered folders like "
            f"{base / '1'}); train one with `mnist-train --model-dir {settings.model_dir}` "
            "(or `make serve`, which trains first), or point --model-dir / MNIST_MODEL_DIR "
            "at a folder that holds mnist/<N>/"
        )


def _model_config(settings: Settings) -> ConfigSource:
    path = settings.model_config_file
    if path is None:
        return ConfigSource(settings.model_config_defaults())
    try:  # a bad file at start is a start-up error; later edits are checked by the watcher
        content, config = read_model_config(path)
    except ModelConfigError as exc:
        raise SettingsError(str(exc)) from None
    return ConfigSource(config, path, content)


def _tls(settings: Settings) -> Tls | None:
    cert_file, key_file = settings.tls_cert_file, settings.tls_key_file
    if cert_file is None or key_file is None:
        return None
    ca_file = settings.tls_client_ca_file
    try:
        tls = Tls(
            cert_file,
            key_file,
            cert_file.read_bytes(),
            key_file.read_bytes(),
            ca_file,
            ca_file.read_bytes() if ca_file is not None else None,
            settings.tls_client_auth,
        )
        rest_context(tls)  # a file that is not PEM, or a key that does not match, fails here
    except ssl.SSLError as exc:
        named = ", ".join(str(f) for f in (cert_file, key_file, ca_file) if f is not None)
        raise SettingsError(f"TLS files {named} cannot be used ({exc.reason or exc})") from None
    except FileNotFoundError as exc:
        raise SettingsError(f"TLS file {exc.filename} does not exist") from None
    except OSError as exc:
        raise SettingsError(f"TLS file {exc.filename} cannot be read ({exc.strerror})") from None
    return tls
