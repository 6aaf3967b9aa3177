"""The facade's calls for adapters: an event log's case count, analysis and process map, stream modes, and one
reader per project."""

import pytest

from prcore_core import PrCore
from prcore_core.errors import StateError


def test_cases_and_analysis_of_a_log_come_from_the_core(tmp_path, demo):
    with PrCore(data_dir=tmp_path) as core:
        event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
        assert core.count_cases(event_log.id) == demo.events["case_id"].nunique()
        core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
        analysis = core.log_analysis(event_log.id)
        assert analysis["n_cases"] == demo.events["case_id"].nunique()
        assert sum(analysis["activities_count"].values()) == len(demo.events)
        edges, activities, cases = core.process_map(event_log.id)
        assert cases == analysis["n_cases"] and activities.sum() == len(demo.events)
        assert core.process_map(event_log.id)[0] is edges  # kept with the definition's version


def test_stream_modes_are_checked_by_the_core():
    assert PrCore.stream_mode("Simulating") == "simulating"
    with pytest.raises(StateError, match="Invalid streaming type"):
        PrCore.stream_mode("replaying")


def test_a_project_has_one_reader_even_in_python(tmp_path):
    with PrCore(data_dir=tmp_path) as core:
        core.open_stream_reader(7)
        with pytest.raises(StateError):
            core.open_stream_reader(7)
        core.close_stream_reader(7)
        core.open_stream_reader(7)
        core.close_stream_reader(7)
