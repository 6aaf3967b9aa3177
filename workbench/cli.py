"""The ``prcore-workbench`` command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from prcore_core.errors import PrCoreError


def __getattr__(name: str):
    """``create_demo_project`` moved to :mod:`prcore_core.demo`; it is still found here (the browser tests import it
    from this module), imported only when asked for so that ``prcore-workbench --help`` stays quick."""
    if name == "create_demo_project":
        from prcore_core.demo import create_demo_project

        return create_demo_project
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _demo(args: argparse.Namespace) -> int:
    """Train a project on the synthetic demo log and print its status and held-out metrics."""
    from prcore_core import PrCore
    from prcore_core.demo import create_demo_project

    started = time.perf_counter()
    with PrCore(data_dir=args.data_dir) as core:
        project = create_demo_project(core, n_cases=args.cases, seed=args.seed, report=print)
        project = project.wait_until("TRAINED", timeout=args.timeout)
        split = project.split
        print(
            f"Project {project.id} is {project.status} after {time.perf_counter() - started:.1f} s "
            f"({split['training_cases']} training cases, {split['held_out_cases']} held out)"
        )
        for key, reason in project.excluded_plugins.items():
            print(f"  not used: {key}: {reason}")
        for plugin in project.plugins:
            metrics = {k: v for k, v in (plugin.metrics or {}).items() if not isinstance(v, list | dict)}
            print(f"  {plugin.key} [{plugin.prescription_type}] {plugin.status}: {json.dumps(metrics)}")
    print(f"Data directory: {Path(args.data_dir).resolve()}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Serve the dashboard and the REST/SSE endpoints."""
    import os

    from workbench.server import PortInUseError, UnprotectedError, serve

    try:
        serve(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            database_url=args.database_url,
            token=args.token or os.environ.get("PRCORE_API_TOKEN"),
            show=args.show,
            demo=args.demo,
            demo_cases=args.demo_cases,
            ping_interval=args.ping_interval,
            sse_format=args.sse_format,
            credentials=_credentials(args),
            dashboard_auth=args.dashboard_auth,
        )
    except (PortInUseError, UnprotectedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _credentials(args: argparse.Namespace) -> tuple[str, str] | None:
    """The user name and password of ``POST /token``: options, else ``PRCORE_API_USERNAME``/``_PASSWORD``."""
    import os

    username = args.username or os.environ.get("PRCORE_API_USERNAME")
    password = args.password or os.environ.get("PRCORE_API_PASSWORD")
    return (username, password) if username and password else None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prcore-workbench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a project on the built-in synthetic demo log and print it")
    demo.add_argument("--data-dir", default="./prcore-data", help="data directory (default ./prcore-data)")
    demo.add_argument("--cases", type=int, default=2000, help="number of demo cases (default 2000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the demo log")
    demo.add_argument("--timeout", type=float, default=600, help="seconds to wait for training")
    demo.set_defaults(handler=_demo)
    serve = commands.add_parser("serve", help="serve the dashboard and the REST/SSE endpoints in one process")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--data-dir", default=None, help="data directory (default PRCORE_DATA_DIR or ./prcore-data)")
    serve.add_argument("--database-url", default=None, help="SQLAlchemy URL (default SQLite in the data directory)")
    serve.add_argument("--token", default=None, help="API token (default PRCORE_API_TOKEN, else generated once)")
    serve.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="open the dashboard on a project trained on the built-in demo log (created on first start)",
    )
    serve.add_argument("--demo-cases", type=int, default=2000, help="cases of the demo log (default 2000)")
    serve.add_argument(
        "--ping-interval",
        type=_positive_seconds,
        default=15.0,
        help="seconds between keep-alive pings on an idle SSE stream (default 15)",
    )
    serve.add_argument(
        "--sse-format",
        choices=("list", "prcore"),
        default=None,
        help="prescriptions on SSE and in dataset results: the seed's list, or PrCore's object keyed by plugin id "
        "(PrCore mode); default PRCORE_SSE_FORMAT or list. A request's ?format= chooses for itself",
    )
    serve.add_argument(
        "--dashboard-auth",
        choices=("token", "none"),
        default=None,
        help="token: the dashboard asks for the API token on a login page (the default on any address but "
        "127.0.0.1); none: no login (refused on non-loopback addresses)",
    )
    serve.add_argument("--username", default=None, help="user name POST /token accepts (or PRCORE_API_USERNAME)")
    serve.add_argument("--password", default=None, help="password POST /token accepts (or PRCORE_API_PASSWORD)")
    serve.set_defaults(handler=_serve)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PrCoreError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
