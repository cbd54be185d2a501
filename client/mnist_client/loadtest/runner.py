"""mnist-loadtest: Locust headless with a step-load shape, then a summary, a plot and gates.

    mnist-loadtest --host http://127.0.0.1:8080 --steps 8,16,32,64 --step-seconds 20 \\
        --out loadtest-report --slo-p99-ms 100 --max-error-rate 0.001

Writes Locust's CSV files and HTML report, ``summary.json`` (requests/s, p50/p95/p99 and
failures per request type) and ``load.png`` (latency percentiles and throughput against users)
into ``--out``; exits 1 when the p99 SLO or the error-rate limit is breached, 2 on usage errors.
Only loopback hosts are accepted unless ``--allow-remote`` is given (for your own deployments).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Given to Locust as a file; importing it here would patch this process for gevent.
USERS_FILE = Path(__file__).with_name("users.py")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="http://127.0.0.1:8080", help="gateway REST URL")
    parser.add_argument("--grpc", default=None, help="gRPC host:port (default: host:8081)")
    parser.add_argument("--target", choices=("gateway", "tfserving"), default="gateway")
    parser.add_argument(
        "--users", default="RestUser,GatewayGrpcUser", help="comma-separated user classes"
    )
    parser.add_argument("--steps", default="8,16,32", help="users at each step")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("loadtest-report"))
    parser.add_argument("--slo-p99-ms", type=float, default=None, help="fail above this p99")
    parser.add_argument("--max-error-rate", type=float, default=None, help="fail above this share")
    parser.add_argument("--allow-remote", action="store_true", help="permit non-loopback hosts")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    steps, problem = _checked_steps(args)
    if problem:
        print(f"mnist-loadtest: {problem}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MNIST_LOADTEST_STEPS": ",".join(map(str, steps)),
        "MNIST_LOADTEST_STEP_SECONDS": str(args.step_seconds),
        "MNIST_LOADTEST_TARGET": args.target,
    }
    if args.grpc:
        env["MNIST_LOADTEST_GRPC"] = args.grpc
    prefix = args.out / "locust"
    # The shape ends the run after the last step; the timeout is only a guard.
    limit = len(steps) * args.step_seconds + 120
    command = _locust_command(args, prefix)
    run = subprocess.run(command, env=env, timeout=limit, check=False)  # noqa: S603 - our argv, no shell
    if run.returncode not in (0, 1):
        print(f"mnist-loadtest: locust exited with {run.returncode}", file=sys.stderr)
        return run.returncode
    summary = summarise(prefix)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(prefix, args.out / "load.png")
    print(json.dumps(summary["aggregated"], indent=2))
    return gate(summary, args.slo_p99_ms, args.max_error_rate)


def _checked_steps(args: argparse.Namespace) -> tuple[list[int], str]:
    """The user counts of the steps, or what is wrong with the options."""
    try:
        steps = [int(s) for s in args.steps.split(",") if s.strip()]
    except ValueError:
        return [], f"--steps must be integers like 8,16,32, got {args.steps!r}"
    if not steps or min(steps) < 1 or args.step_seconds <= 0:
        return [], "give at least one positive step and a positive --step-seconds"
    host = urlsplit(args.host).hostname or ""
    if host not in LOOPBACK and not args.allow_remote:
        return [], f"{host} is not loopback; pass --allow-remote for your own deployment"
    return steps, ""


def _locust_command(args: argparse.Namespace, prefix: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "locust", "-f", str(USERS_FILE), "--headless"),
        *("--host", args.host, "--csv", str(prefix), "--csv-full-history"),
        *("--html", str(args.out / "report.html"), "--stop-timeout", "5"),
        *("--loglevel", "WARNING", "--exit-code-on-error", "0"),
        *args.users.split(","),
    ]


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def summarise(prefix: Path) -> dict[str, Any]:
    rows = list(csv.DictReader((prefix.parent / f"{prefix.name}_stats.csv").open()))
    per_type = {}
    aggregated: dict[str, Any] = {}
    for row in rows:
        entry = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "requests_per_second": round(_float(row["Requests/s"]), 2),
            "p50_ms": _float(row["50%"]),
            "p95_ms": _float(row["95%"]),
            "p99_ms": _float(row["99%"]),
        }
        entry["error_rate"] = (
            round(entry["failures"] / entry["requests"], 6) if entry["requests"] else 0.0
        )
        if row["Name"] == "Aggregated":
            aggregated = entry
        else:
            per_type[f"{row['Type']} {row['Name']}"] = entry
    return {"aggregated": aggregated, "per_request_type": per_type}


def plot(prefix: Path, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = [
        r
        for r in csv.DictReader((prefix.parent / f"{prefix.name}_stats_history.csv").open())
        if r["Name"] == "Aggregated" and r["User Count"] not in ("", "0")
    ]
    by_users: dict[int, list[dict[str, str]]] = {}
    for r in history:
        by_users.setdefault(int(r["User Count"]), []).append(r)
    users_axis = sorted(by_users)
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4))
    for pct in ("50%", "95%", "99%"):
        values = [max(_float(r[pct]) for r in by_users[u]) for u in users_axis]
        lat.plot(users_axis, values, marker="o", label=f"p{pct.rstrip('%')}")
    lat.set_xlabel("concurrent users")
    lat.set_ylabel("latency (ms)")
    lat.set_title("Latency percentiles")
    lat.legend()
    lat.grid(alpha=0.3)
    rps = [sum(_float(r["Requests/s"]) for r in by_users[u]) / len(by_users[u]) for u in users_axis]
    thr.plot(users_axis, rps, marker="o", color="tab:green")
    thr.set_xlabel("concurrent users")
    thr.set_ylabel("requests/s")
    thr.set_title("Throughput")
    thr.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def gate(summary: dict[str, Any], slo_p99_ms: float | None, max_error_rate: float | None) -> int:
    total = summary["aggregated"]
    breaches = []
    if slo_p99_ms is not None and not total.get("p99_ms", 0) <= slo_p99_ms:
        breaches.append(f"p99 {total.get('p99_ms')} ms > SLO {slo_p99_ms} ms")
    if max_error_rate is not None and not total.get("error_rate", 0) <= max_error_rate:
        breaches.append(f"error rate {total.get('error_rate')} > {max_error_rate}")
    if not total.get("requests"):
        breaches.append("no requests were made")
    for breach in breaches:
        print(f"mnist-loadtest: breach: {breach}", file=sys.stderr)
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
