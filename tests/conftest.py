"""Shared fixtures: a fresh workbench per test and small synthetic demo logs (no third-party data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prcore_core import PrCore
from prcore_core.demo import generate_demo_log


def pytest_addoption(parser):
    parser.addoption(
        "--shared-data",
        default=None,
        help="directory with the real event logs (bpic2012-CSV.zip, ...) for the integration tests",
    )


@pytest.fixture
def shared_data(request) -> Path:
    """The real-log directory given with --shared-data; tests that need it are skipped without it."""
    value = request.config.getoption("--shared-data")
    if not value or not Path(value).is_dir():
        pytest.skip("real event logs not given (--shared-data PATH)")
    return Path(value)


@pytest.fixture(scope="session")
def demo():
    """A small demo log (600 cases)."""
    return generate_demo_log(n_cases=600, seed=3)


@pytest.fixture
def core(tmp_path):
    with PrCore(data_dir=tmp_path / "data") as workbench:
        yield workbench


@pytest.fixture
def defined_log(core, demo):
    """An uploaded demo log with its columns defined."""
    event_log = core.upload_event_log(demo.to_csv(), filename="demo.csv")
    core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
    return event_log
