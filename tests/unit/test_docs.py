"""The docs match the code: the metrics table, the flag tables, the README's commands, the links
between pages, and the architecture page's tree of the gateway's modules."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from mnist_serving.adapters.rest.routes import ROUTES
from mnist_serving.cli import _shown_default
from mnist_serving.observability.collectors import DriftGauges
from mnist_serving.observability.metrics import SPECS, create_metrics
from mnist_serving.observability.multiprocess import WORKER_TABLE, WorkerProcesses
from mnist_serving.repositories.repository import ServedVersion, announce_versions
from mnist_serving.settings import Settings
from tests.helpers.fakes import FakeRuntime

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SERVING = ROOT / "serving" / "mnist_serving"


def _rows(text: str, header: str) -> list[list[str]]:
    """The cells of every row of the table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- metrics --------------------------------------------------------------------------------


def _exposed_metrics(tmp_path: Path) -> dict[str, tuple[str, set[str]]]:
    """Every mnist_* sample name the gateway can expose → (type, labels)."""
    metrics = create_metrics(process=False)
    declared = {spec.name.removesuffix("_total"): set(spec.labels) for spec in SPECS}
    # The model's info as the repositories announce it.
    served = ServedVersion(None, FakeRuntime(1), None, 0.0, 0)  # type: ignore[arg-type]
    announce_versions(metrics, served, [])
    # The labelled bulk histograms (not in SPECS), with a child each.
    metrics.version_confidence.labels("1")
    metrics.shadow_confidence_delta.labels("1")
    families = list(metrics.registry.collect()) + list(metrics.model_info.collect())
    table = tmp_path / WORKER_TABLE
    table.write_text(json.dumps({"supervisor": 1, "restarts": 0, "workers": []}))
    families += list(WorkerProcesses(table).collect())
    # The drift gauges, as a window with a score reports them.
    scored = {
        "overall": 0.1,
        "features": {"ink": 0.1},
        "alarm": False,
        "estimated_accuracy": 0.99,
        "window": {"images": 500},
    }
    families += list(DriftGauges(lambda: scored).collect())
    found: dict[str, tuple[str, set[str]]] = {}
    for family in families:
        if not family.name.startswith("mnist_"):
            continue
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        # A labelled metric with no child yet has no samples: its labels come from its spec.
        labels |= declared.get(family.name, set())
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        found[family.name + suffix] = (family.type, labels)
    return found


def test_every_metric_in_the_docs_exists_with_its_labels_and_the_reverse(tmp_path) -> None:
    documented: dict[str, tuple[str, set[str]]] = {}
    for name_cell, kind, labels, _ in _rows((DOCS / "metrics.md").read_text(), "| name |"):
        for name in _ticked(name_cell):
            if name.startswith("mnist_"):
                documented[name] = (kind, set(_ticked(labels)))
    exposed = _exposed_metrics(tmp_path)
    assert set(documented) == set(exposed), (
        f"in the docs only: {sorted(set(documented) - set(exposed))}; "
        f"in the code only: {sorted(set(exposed) - set(documented))}"
    )
    for name, (kind, labels) in documented.items():
        assert (kind, labels) == exposed[name], name


# -- flags ----------------------------------------------------------------------------------


def _same_value(written: str, shown: str) -> bool:
    """A default as the docs write it and as ``--help`` shows it, compared as values."""
    if written == shown:  # a word that is the value itself (rollout "off")
        return True
    words = {"on": "True", "off": "False", "none": "none"}
    written = words.get(written, written)
    shown = shown or "none"  # an empty list
    try:
        return float(written) == float(shown)
    except ValueError:
        return written == shown


def test_the_gateway_flag_table_is_every_setting_with_its_default_and_variable() -> None:
    rows = [r for r in _rows((DOCS / "operations.md").read_text(), "| flag |") if r[1]]
    seen = set()
    for flag_cell, env_cell, default_cell, _ in rows:
        (flag,) = _ticked(flag_cell)
        name = flag.removeprefix("--").replace("-", "_")
        assert name in Settings.model_fields, f"{flag} is not a setting"
        assert _ticked(env_cell) == [f"MNIST_{name.upper()}"], flag
        default = _ticked(default_cell)[0]
        assert _same_value(default, _shown_default(name)), (flag, default, _shown_default(name))
        seen.add(name)
    assert seen == set(Settings.model_fields), sorted(set(Settings.model_fields) - seen)


def test_the_training_option_table_matches_mnist_train() -> None:
    from mnist_training.cli import _train_parser, build_parser

    train = _train_parser(build_parser({}))
    options = {o: a for a in train._actions for o in a.option_strings}
    rows = _rows((DOCS / "training.md").read_text(), "| option |")
    for flag_cell, default_cell, _ in rows:
        (flag,) = _ticked(flag_cell)
        assert flag in options, f"mnist-train has no {flag}"
        action = options[flag]
        ticked = _ticked(default_cell)
        if ticked:
            assert _same_value(ticked[0], str(action.default)), (flag, ticked[0], action.default)
        else:  # words, not a value: the option has none of its own
            assert action.default is None or flag == "--no-plots", flag
    documented = {_ticked(r[0])[0] for r in rows}
    assert documented == set(options) - {"-h", "--help"}


# -- the README's commands ------------------------------------------------------------------


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


@pytest.mark.parametrize(
    "command",
    [
        "mnist_serving.cli",
        "mnist_training.cli",
        "mnist_client.cli",
        "mnist_client.loadtest.runner",
    ],
)
def test_every_commands_help_is_plain_text(command: str) -> None:
    """What ``--help`` prints is read in a terminal: no reStructuredText or Markdown marks."""
    import importlib

    text = importlib.import_module(command).build_parser().format_help()
    assert "``" not in text and ":func:" not in text and "**" not in text, text[:300]


def test_every_command_the_readme_gives_exists() -> None:
    dev = (ROOT / "dev.py").read_text()
    makefile = (ROOT / "Makefile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    compose = (ROOT / "docker-compose.yml").read_text()
    paths = {route.template.replace("{model}", "mnist") for route in ROUTES}
    commands = _readme_commands()
    assert commands
    for words in commands:
        program = words[0]
        if program in ("python3", "python") and words[1] == "dev.py":
            assert f'"{words[2]}": ' in dev, words
        elif program == "make":
            assert re.search(rf"^{words[1]}:", makefile, re.M), words
        elif program == "docker":
            assert words[1] == "compose" and all(
                f"profiles: [{p}]" in compose
                for p in (words[i + 1] for i, w in enumerate(words) if w == "--profile")
            ), words
        elif program in project["scripts"]:
            assert program in project["scripts"], words
        elif program == "curl":
            url = next(w for w in words if w.startswith("localhost:"))
            path = "/" + url.split("/", 1)[1]
            assert path in paths, words
        elif program == "kubectl":
            assert (ROOT / words[-1] / "kustomization.yaml").is_file(), words
        else:
            pytest.fail(f"the README runs {program}, which this test does not know")


# -- links and the tree ---------------------------------------------------------------------


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted(DOCS.glob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_link_between_pages_resolves(page: Path) -> None:
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # another site
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page.name}: no #{anchor} in {path}"


def test_the_architecture_page_draws_every_module_of_the_gateway_and_no_other() -> None:
    text = (DOCS / "architecture.md").read_text()
    start = text.index("serving/mnist_serving/\n")
    tree = text[start : text.index("```", start)]
    drawn, folder = set(), ""
    for line in tree.splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        for word in line.split():
            if word.endswith("/") and indent == 2:
                folder = word
            elif word.endswith("/") and indent == 4:
                folder = folder.split("/")[0] + "/" + word
            elif word.endswith(".py"):
                drawn.add((folder if indent > 2 else "") + word)
    modules = {
        str(p.relative_to(SERVING))
        for p in SERVING.rglob("*.py")
        if p.name != "__init__.py" or p.parent == SERVING
    }
    modules -= {"static/__init__.py"}
    assert drawn == modules, (
        f"drawn only: {sorted(drawn - modules)}; not drawn: {sorted(modules - drawn)}"
    )


TOP_FOLDERS = (
    "tests",
    "deploy",
    "docs",
    "benchmarks",
    "serving",
    "client",
    "contract",
    "training",
    "scripts",
)


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted(DOCS.glob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_file_and_test_a_page_names_exists(page: Path) -> None:
    for named in re.findall(r"`([\w./-]+(?:::\w+)?)`", page.read_text()):
        path, _, test = named.partition("::")
        if not path.startswith(tuple(f"{folder}/" for folder in TOP_FOLDERS)) or "/." in path:
            continue  # not the repository's, or made by a run (hidden folders are ignored)
        file = ROOT / path
        assert file.exists(), f"{page.name} names {path}, which does not exist"
        if test:
            assert re.search(rf"def {test}\b", file.read_text()), f"{page.name}: no {named}"
