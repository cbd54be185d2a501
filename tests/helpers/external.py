"""Other projects' clients and servers, which run in their own environment (``.venv-clients``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = ROOT / "tests" / "external"
CLIENTS_PYTHON = ROOT / ".venv-clients" / "bin" / "python"


def clients_python() -> Path:
    assert CLIENTS_PYTHON.exists(), (
        f"{CLIENTS_PYTHON} is missing: `python3 dev.py test` makes it "
        "(pip install -r tests/external/requirements.txt into .venv-clients)"
    )
    return CLIENTS_PYTHON


SCANNERS_BIN = ROOT / ".venv-scanners" / "bin"


def checkov() -> Path:
    """The policy scanner, from its own environment."""
    tool = SCANNERS_BIN / "checkov"
    assert tool.exists(), (
        f"{tool} is missing: `python3 dev.py test` makes it "
        "(pip install -r tests/external/scanners.txt into .venv-scanners)"
    )
    return tool
