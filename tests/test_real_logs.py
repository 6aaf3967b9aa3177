"""Integration on the real BPI Challenge 2012 log (given with --shared-data PATH; skipped without it).

The issue's acceptance path, from Python: upload, define the columns of PrCore's reference (section 14), create a
project with outcome A_APPROVED and treatment O_SENT_BACK, reach TRAINED with held-out metrics, and find it
TRAINED again from a new PrCore on the same directory. Once for the CSV, once for the XES in detailed mode.
"""

from __future__ import annotations

import pytest

from prcore_core import PrCore, ProjectStatus

CSV_COLUMNS = {
    "Case ID": "CASE_ID",
    "start_time": "START_TIMESTAMP",
    "end_time": "END_TIMESTAMP",
    "AMOUNT_REQ": "NUMBER",
    "REG_DATE": "DATETIME",
    "Activity": "ACTIVITY",
    "Resource": "RESOURCE",
}
XES_COLUMNS = {
    "org:resource": "RESOURCE",
    "lifecycle:transition": "TRANSITION",
    "concept:name": "ACTIVITY",
    "time:timestamp": "TIMESTAMP",
    "case:REG_DATE": "DATETIME",
    "case:concept:name": "CASE_ID",
    "case:AMOUNT_REQ": "NUMBER",
}


def _condition(column, value):
    return [[{"column": column, "operator": "EQUAL", "value": value}]]


@pytest.mark.parametrize(
    ("file_name", "columns", "case_attributes", "fast_mode", "activity", "rows", "instances"),
    [
        ("bpic2012-CSV.zip", CSV_COLUMNS, ["AMOUNT_REQ", "REG_DATE"], True, "Activity", 164_509, 164_509),
        (
            "bpic2012-XES.zip",
            XES_COLUMNS,
            ["case:REG_DATE", "case:AMOUNT_REQ"],
            False,
            "concept:name",
            262_200,
            164_511,
        ),
    ],
)
def test_bpic2012_reaches_trained_and_survives_a_restart(
    shared_data, tmp_path, file_name, columns, case_attributes, fast_mode, activity, rows, instances
):
    with PrCore(data_dir=tmp_path) as core:
        event_log = core.upload_event_log(shared_data / file_name)
        assert event_log.n_rows == rows
        analysis = core.set_columns_definition(event_log.id, columns, case_attributes, fast_mode=fast_mode)
        assert analysis["activities_count"]["A_APPROVED"] == 2246
        project = core.create_project(
            event_log.id,
            positive_outcome=_condition(activity, "A_APPROVED"),
            treatment=_condition(activity, "O_SENT_BACK"),
        )
        project = project.wait_until("TRAINED", timeout=600)
        assert project.split == {
            **project.split,
            "training_cases": 10_469,
            "held_out_cases": 2_618,
            "events": instances,
        }
        next_activity = project.plugin("knn-next-activity")
        assert next_activity.metrics["accuracy"] > 0.6
        assert next_activity.metrics["support"] > 20_000
    with PrCore(data_dir=tmp_path) as core:
        again = core.get_project(project.id)
        assert again.status is ProjectStatus.TRAINED
        assert again.plugin("knn-next-activity").metrics == next_activity.metrics


def test_bpic2012_simulation_is_read_with_a_plain_sse_client(shared_data, tmp_path, start_server, sse_reader):
    """Train on the BPIC 2012 CSV from Python, then replay held-out cases through the server and read them."""
    with PrCore(data_dir=tmp_path) as core:
        event_log = core.upload_event_log(shared_data / "bpic2012-CSV.zip")
        analysis = core.set_columns_definition(event_log.id, CSV_COLUMNS, ["AMOUNT_REQ", "REG_DATE"])
        resources = ["10910", "10912", "10913", "10914", "11000", "11009", "11019", "11049"]
        project = core.create_project(
            event_log.id,
            positive_outcome=_condition("Activity", "A_APPROVED"),
            treatment=_condition("Activity", "O_SENT_BACK"),
            additional_info={"resource-allocation": {"available_resources": resources, "treatment_duration": "1h"}},
        )
        project = project.wait_until("TRAINED", timeout=600)
    activities = set(analysis["activities_count"])
    server = start_server(data_dir=tmp_path)
    started = server.put(f"/project/{project.id}/stream/start/simulating?interval=0.002&max_events=300")
    assert started.status_code == 200, started.text
    reader = sse_reader(server, project.id)
    seen = reader.until(lambda item, seen: item[:3:2] == ("notification", "FINISHED"), timeout=180)
    events = reader.messages(seen)
    assert len(events) == 300
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))  # each once, in order
    times = [e["data"]["start_time"].strip() for e in events]
    assert times == sorted(times)  # the held-out cases replayed in timestamp order (ISO text sorts as time)
    open_events = [e for e in events if not e["case_completed"]]
    assert open_events and all(e["prescriptions"] == [] for e in events if e["case_completed"])
    kinds = {"NEXT_ACTIVITY", "ALARM", "TREATMENT_EFFECT", "RESOURCE_ALLOCATION", "REMAINING_TIME"}
    assert all({p["type"] for p in e["prescriptions"]} == kinds for e in open_events)
    next_activities = [p["output"] for e in open_events for p in e["prescriptions"] if p["type"] == "NEXT_ACTIVITY"]
    assert set(next_activities) <= activities and len(set(next_activities)) > 1
    server.wait_status(project.id, "TRAINED")
