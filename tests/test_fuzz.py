"""Property-based fuzzing of the whole REST API with schemathesis, against a live server with a trained project.

schemathesis reads the server's own ``/openapi.json`` and generates requests from it: examples, boundary values
(the coverage phase), random data and stateful sequences. The run must find no server error (5xx), no undocumented
status code or content type and no answer that breaks its declared schema. It is bounded (``--max-examples``) and
seeded, so it is repeatable and takes a few minutes.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from prcore_core import PrCore
from tests.conftest import TOKEN, Server

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory):
    from prcore_core.demo import generate_demo_log

    directory = tmp_path_factory.mktemp("fuzzed") / "data"
    demo = generate_demo_log(n_cases=300, seed=11)
    with PrCore(data_dir=directory) as core:
        event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
        core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
        project = core.create_project(event_log.id, positive_outcome=demo.outcome, treatment=demo.treatment)
        project.wait_until("TRAINED", 300)
    server = Server(directory).start()
    yield server
    server.stop()


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(trained_server):
    command = [
        sys.executable,
        "-c",
        "from schemathesis.cli import schemathesis; schemathesis()",
        "run",
        f"{trained_server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--seed",
        "20261202",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    print(summary)  # the counts: generated, passed, failures by check
    assert run.returncode == 0, run.stdout[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert generated and generated.group(1) == generated.group(2), summary
    assert "Uncaught exception" not in trained_server.output()
