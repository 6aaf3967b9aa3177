"""The ``prcore-workbench`` command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from prcore_core.errors import PrCoreError


def _demo(args: argparse.Namespace) -> int:
    """Train a project on the synthetic demo log and print its status and held-out metrics."""
    from prcore_core import PrCore
    from prcore_core.demo import generate_demo_log

    started = time.perf_counter()
    demo = generate_demo_log(n_cases=args.cases, seed=args.seed)
    with PrCore(data_dir=args.data_dir) as core:
        event_log = core.upload_event_log(demo.to_csv(), filename="demo-loan-applications.csv")
        print(f"Uploaded {event_log.file_name}: {event_log.n_rows:,} events, columns {event_log.columns_header}")
        analysis = core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
        print(f"Activities: {len(analysis['activities_count'])}, resources: {len(analysis['resources_count'])}")
        project = core.create_project(event_log.id, positive_outcome=demo.outcome, treatment=demo.treatment,
                                      name="Demo: loan applications")  # fmt: skip
        print(f"Project {project.id} created: {project.status}")
        project = project.wait_until("TRAINED", timeout=args.timeout)
        split = project.split
        print(f"Project {project.id} is {project.status} after {time.perf_counter() - started:.1f} s "
              f"({split['training_cases']} training cases, {split['held_out_cases']} held out)")
        for key, reason in project.excluded_plugins.items():
            print(f"  not used: {key}: {reason}")
        for plugin in project.plugins:
            metrics = {k: v for k, v in (plugin.metrics or {}).items() if not isinstance(v, list | dict)}
            print(f"  {plugin.key} [{plugin.prescription_type}] {plugin.status}: {json.dumps(metrics)}")
    print(f"Data directory: {Path(args.data_dir).resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prcore-workbench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a project on the built-in synthetic demo log and print it")
    demo.add_argument("--data-dir", default="./prcore-data", help="data directory (default ./prcore-data)")
    demo.add_argument("--cases", type=int, default=2000, help="number of demo cases (default 2000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the demo log")
    demo.add_argument("--timeout", type=float, default=600, help="seconds to wait for training")
    demo.set_defaults(handler=_demo)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PrCoreError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
