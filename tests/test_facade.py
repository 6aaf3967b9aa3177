"""The PrCore facade as a notebook user sees it: upload, define, create, train, restart, redefine, delete."""

from __future__ import annotations

import io
import zipfile

import pytest

from prcore_core import PrCore, ProjectStatus
from prcore_core.errors import (
    InvalidColumnsDefinitionError,
    InvalidConditionError,
    InvalidEventLogError,
    InvalidParameterError,
    NotFoundError,
    PrCoreError,
    StateError,
)

pytestmark = pytest.mark.databases  # on SQLite and on PostgreSQL (tests/conftest.py)

SEED_PROJECT_KEYS = ["id", "created_at", "updated_at", "name", "description", "status", "event_log", "plugins"]
SEED_EVENT_LOG_KEYS = ["id", "created_at", "updated_at", "file_name", "definition"]
SEED_DEFINITION_KEYS = [
    "id",
    "created_at",
    "updated_at",
    "columns_definition",
    "outcome_definition",
    "treatment_definition",
]
SEED_PLUGIN_KEYS = ["id", "created_at", "updated_at", "name", "prescription_type", "description", "status"]


def _files(core: PrCore) -> set[str]:
    return {
        str(p.relative_to(core.settings.data_dir))
        for p in core.settings.data_dir.rglob("*")
        if p.is_file() and not p.name.startswith("prcore.db")
    }


def test_upload_reports_columns_inferred_definition_and_preview(core, demo):
    event_log = core.upload_event_log(demo.to_csv(separator=";"), filename="loans.csv")
    assert event_log.file_name == "loans.csv"
    assert event_log.n_rows == len(demo.events)
    assert event_log.columns_header == list(demo.events.columns)
    inferred = dict(zip(event_log.columns_header, event_log.inferred_definition, strict=True))
    assert inferred["case_id"] == "CASE_ID"
    assert inferred["activity"] == "ACTIVITY"
    assert inferred["timestamp"] == "TIMESTAMP"
    assert inferred["resource"] == "RESOURCE"
    assert len(event_log.preview) == 5
    assert event_log.preview[0][0] == str(demo.events.iloc[0, 0])
    assert event_log.upload_response()["message"] == "Event log uploaded"
    assert core.get_event_log(event_log.id).n_rows == event_log.n_rows


def test_definition_analysis(core, demo):
    event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
    analysis = core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
    counts = demo.events["activity"].value_counts()
    assert analysis["activities_count"] == {k: int(v) for k, v in counts.items()}
    assert list(analysis["activities_count"].values()) == sorted(analysis["activities_count"].values(), reverse=True)
    assert sum(analysis["resources_count"].values()) == demo.events["resource"].notna().sum()
    assert analysis["outcome_options"][-1] == "DURATION"
    assert "DURATION" not in analysis["treatment_options"]
    assert "case_id" not in analysis["outcome_options"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"no_such_column": "TEXT"}, "Invalid column definition"),
        ({"resource": "CASE_ID"}, "Multiple case ID columns found"),
        ({"activity": "TEXT"}, "No activity column found"),
        ({"timestamp": "TEXT"}, "No timestamp column found"),
        ({"timestamp": "START_TIMESTAMP"}, "Invalid column definition"),
    ],
)
def test_bad_columns_definitions_name_the_problem(core, demo, change, message):
    event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
    with pytest.raises(InvalidColumnsDefinitionError) as raised:
        core.set_columns_definition(event_log.id, {**demo.columns_definition, **change})
    assert raised.value.detail == message
    assert core.get_event_log(event_log.id).definition is None


def test_bad_case_attributes_and_missing_log(core, demo):
    event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
    with pytest.raises(InvalidColumnsDefinitionError, match="Invalid case attributes"):
        core.set_columns_definition(event_log.id, demo.columns_definition, ["nope"])
    with pytest.raises(NotFoundError, match="Event log not found") as raised:
        core.set_columns_definition(999, demo.columns_definition)
    assert raised.value.status_code == 404


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "empty.csv", "No valid event log provided"),
        (bytes(range(256)) * 40, "garbage.csv", "No valid event log provided"),
        (_zip({"a.csv": b"a,b\n1,2\n", "b.csv": b"a,b\n1,2\n"}), "two.zip", "Zip file should contain only one file"),
        (_zip({"notes.txt": b"hello"}), "notes.zip", "Zip file should contain only xes or csv file"),
        (b"case,activity,time\n1,a,2024-01-01\n", "log.json", "No valid event log provided"),
        (b"PK\x03\x04 not really a zip", "broken.zip", "ZIP file is corrupted"),
    ],
)
def test_bad_uploads_name_the_problem_and_leave_nothing(core, data, filename, message):
    with pytest.raises(InvalidEventLogError) as raised:
        core.upload_event_log(data, filename=filename)
    assert raised.value.detail == message
    assert raised.value.status_code == 400
    assert core.list_event_logs() == []
    assert _files(core) == set()


def test_csv_without_timestamp_column_cannot_be_defined(core):
    event_log = core.upload_event_log(b"case,activity,who\n1,a,x\n1,b,y\n", filename="plain.csv")
    assert "TIMESTAMP" not in event_log.inferred_definition
    with pytest.raises(InvalidColumnsDefinitionError, match="No timestamp column found"):
        core.set_columns_definition(event_log.id, {"case": "CASE_ID", "activity": "ACTIVITY", "who": "RESOURCE"})


def test_project_on_undefined_log_and_missing_log(core, demo):
    event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
    with pytest.raises(StateError, match="Event log definition not found"):
        core.create_project(event_log.id, positive_outcome=demo.outcome)
    with pytest.raises(NotFoundError, match="Event log not found") as raised:
        core.create_project(12345, positive_outcome=demo.outcome)
    assert raised.value.status_code == 400
    assert core.list_projects() == []


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ([[{"column": "nope", "operator": "EQUAL", "value": "x"}]], "Column 'nope' is not defined"),
        (
            [[{"column": "activity", "operator": "LESS_THAN", "value": "x"}]],
            "Operator 'LESS_THAN' not supported for column 'activity'",
        ),
        ([[{"column": "amount", "operator": "GREATER_THAN", "value": "lots"}]], "Invalid number value for amount"),
        ([[]], "Invalid definition"),
        ([{"column": "activity", "operator": "EQUAL", "value": "x"}], "Invalid definition"),
    ],
)
def test_bad_outcome_definitions_leave_nothing_half_written(core, defined_log, outcome, message):
    with pytest.raises(InvalidConditionError) as raised:
        core.create_project(defined_log.id, positive_outcome=outcome)
    assert raised.value.detail == message
    assert core.list_projects() == []
    assert core.get_event_log(defined_log.id).definition["outcome_definition"] is None


def test_conflicting_outcomes_and_unknown_plugin_settings(core, defined_log, demo):
    with pytest.raises(PrCoreError, match="Project definition conflict"):
        core.create_project(defined_log.id, positive_outcome=demo.outcome, negative_outcome=demo.outcome)
    with pytest.raises(InvalidParameterError, match="Unknown plugin 'no-such-plugin'"):
        core.create_project(defined_log.id, positive_outcome=demo.outcome, parameters={"no-such-plugin": {}})
    with pytest.raises(InvalidParameterError, match="n_neighbors"):
        core.create_project(
            defined_log.id, positive_outcome=demo.outcome, parameters={"plugin-knn-next-activity": {"n_neighbors": 0}}
        )
    assert core.list_projects() == []


def test_project_trains_and_matches_the_seed_shape(core, defined_log, demo):
    project = core.create_project(defined_log.id, positive_outcome=demo.outcome, treatment=demo.treatment)
    assert project.status is ProjectStatus.PREPROCESSING
    assert project.name == "demo.csv"
    project = project.wait_until("TRAINED", timeout=120)
    document = project.to_dict()
    assert list(document)[: len(SEED_PROJECT_KEYS)] == SEED_PROJECT_KEYS
    assert list(document["event_log"]) == SEED_EVENT_LOG_KEYS
    assert list(document["event_log"]["definition"])[: len(SEED_DEFINITION_KEYS)] == SEED_DEFINITION_KEYS
    assert document["status"] == "TRAINED"
    assert document["created_at"].endswith("+00:00")
    assert document["event_log"]["definition"]["outcome_definition"] == demo.outcome
    assert document["event_log"]["definition"]["treatment_definition"] == demo.treatment
    knn = next(p for p in document["plugins"] if p["key"] == "knn-next-activity")
    assert list(knn)[: len(SEED_PLUGIN_KEYS)] == SEED_PLUGIN_KEYS
    assert knn["prescription_type"] == "NEXT_ACTIVITY"
    assert knn["name"] == "KNN next activity prediction"
    assert knn["status"] == "TRAINED"
    assert 0.3 < knn["metrics"]["accuracy"] <= 1.0
    assert knn["metrics"]["by_prefix_length"][0]["prefix_length"] == 1
    split = document["split"]
    assert split["training_cases"] + split["held_out_cases"] == demo.events["case_id"].nunique()
    assert split["training_cases"] == int(0.8 * demo.events["case_id"].nunique())


def test_split_is_by_case_start_time(core, defined_log, demo):
    project = core.create_project(defined_log.id, positive_outcome=demo.outcome).wait_until("TRAINED", 120)
    with core.sessions() as session:
        from prcore_core.db import ProjectRecord

        prepared = core.trainer.prepared(session.get(ProjectRecord, project.id))
    starts = prepared.events.groupby("CASE_ID")["TIMESTAMP"].min()
    assert starts[prepared.training_cases].max() <= starts[prepared.held_out_cases].min()


def test_restart_keeps_trained_project_usable_without_retraining(tmp_path, demo, database_url):
    with PrCore(data_dir=tmp_path, database_url=database_url) as core:
        event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
        core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
        project = core.create_project(event_log.id, positive_outcome=demo.outcome).wait_until("TRAINED", 120)
        before = project.to_dict()
    with PrCore(data_dir=tmp_path, database_url=database_url) as core:
        again = core.get_project(project.id)
        assert again.status is ProjectStatus.TRAINED
        assert again.to_dict()["plugins"] == before["plugins"]
        first_cases = demo.events["case_id"].isin(demo.events["case_id"].unique()[:5])
        ongoing = demo.events[first_cases].groupby("case_id").head(3)
        prescriptions = again.prescribe(ongoing)
        assert len(prescriptions) == 5
        first = next(p for p in next(iter(prescriptions.values())) if p["plugin"]["key"] == "knn-next-activity")
        assert first["type"] == "NEXT_ACTIVITY"
        assert first["output"] in set(demo.events["activity"])
        assert first["plugin"]["name"] == "KNN next activity prediction"
        knn = next(p for p in before["plugins"] if p["name"] == "KNN next activity prediction")
        assert first["plugin"]["accuracy"] == knn["metrics"]["accuracy"]


def test_restart_during_training_resumes(tmp_path, demo, database_url):
    core = PrCore(data_dir=tmp_path, database_url=database_url)
    event_log = core.upload_event_log(demo.to_csv(), filename="loans.csv")
    core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
    core.executor.shutdown(wait=True)  # nothing can run: as if the process died right after creating
    with pytest.raises(RuntimeError):
        core.create_project(event_log.id, positive_outcome=demo.outcome)
    core.results.close()  # its threads would have died with the process
    core.engine.dispose()
    with PrCore(data_dir=tmp_path, database_url=database_url) as restarted:
        project = restarted.list_projects()[0]
        assert project.status in (ProjectStatus.PREPROCESSING, ProjectStatus.TRAINING, ProjectStatus.TRAINED)
        assert project.wait_until("TRAINED", 120).plugins[0].status == "TRAINED"


def test_redefine_retrains_with_fresh_plugins_and_columns_redefinition_resets(core, defined_log, demo):
    project = core.create_project(defined_log.id, positive_outcome=demo.outcome).wait_until("TRAINED", 120)
    old_ids = {p.id for p in project.plugins}
    negative = [[{"column": "activity", "operator": "EQUAL", "value": "Decline loan"}]]
    redefined = core.redefine_project(
        project.id, negative_outcome=negative, parameters={"knn-next-activity": {"n_neighbors": 5}}
    )
    assert redefined.status is ProjectStatus.PREPROCESSING
    trained = redefined.wait_until("TRAINED", 120)
    assert {p.id for p in trained.plugins}.isdisjoint(old_ids)
    assert trained.plugin("knn-next-activity").parameters["n_neighbors"] == 5
    definition = trained.event_log.definition
    assert definition["outcome_definition"] == negative and definition["outcome_definition_negative"] is True

    core.set_columns_definition(defined_log.id, demo.columns_definition, demo.case_attributes)
    waiting = core.get_project(project.id)
    assert waiting.status is ProjectStatus.WAITING
    assert waiting.event_log.definition["outcome_definition"] is None
    assert all(p.status == "WAITING" for p in waiting.plugins)


def test_update_and_delete_project(core, defined_log, demo):
    project = core.create_project(defined_log.id, positive_outcome=demo.outcome, name="Loans", description="first")
    assert project.name == "Loans"
    renamed = core.update_project(project.id, name="Loans 2024", description="second try")
    assert (renamed.name, renamed.description) == ("Loans 2024", "second try")
    with pytest.raises(InvalidParameterError):
        core.update_project(project.id, name="  ")
    project.wait_until("TRAINED", 120)
    core.delete_project(project.id)
    with pytest.raises(NotFoundError, match="Project not found"):
        core.get_project(project.id)
    assert core.list_event_logs() == []
    assert _files(core) == set()


def test_wait_until_raises_with_the_error_message(core, demo):
    # an outcome nobody reaches still trains (next activity needs no outcome); a log whose timestamps are all
    # unparsable cannot be prepared at all and must end in an error status that says so
    frame = demo.events.head(50).copy()
    frame["timestamp"] = "not a time"
    event_log = core.upload_event_log(frame.to_csv(index=False).encode(), filename="broken.csv")
    core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
    project = core.create_project(event_log.id, positive_outcome=demo.outcome)
    with pytest.raises(PrCoreError, match="Failed to pre-process the data"):
        project.wait_until("TRAINED", 60)
    failed = core.get_project(project.id).to_dict()
    assert failed["status"].startswith("Failed to pre-process the data")
    assert failed["error"] == failed["status"]


def _simultaneous_plugins(barrier):
    """Two trivial plugins whose runs end at the same instant (both reach ``save`` before either records it)."""
    from prcore_core.plugin import Plugin

    class Simultaneous(Plugin):
        title = description = "Finishes together with its twin"
        prescription_type = "NEXT_ACTIVITY"

        def fit(self, log, progress=None):
            return self

        def save(self, path):
            barrier.wait(timeout=30)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")  # nothing to keep (and a class made in a test cannot be pickled)
            return path

    return {key: type(key, (Simultaneous,), {"key": key}) for key in ("twin-a", "twin-b")}


def test_plugins_finishing_at_the_same_moment_leave_the_project_trained(core, demo):
    # each finishing plugin derives the project's status from all plugins; done concurrently without care, each
    # sees the other still training and the project stays TRAINING forever with every plugin TRAINED
    import threading

    barrier = threading.Barrier(2)
    core.trainer.plugin_classes = lambda: _simultaneous_plugins(barrier)
    csv = demo.events.head(400).to_csv(index=False).encode()
    for _ in range(5):
        event_log = core.upload_event_log(csv, filename="demo.csv")
        core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
        project = core.create_project(event_log.id).wait_until("TRAINED", 60)
        assert [p.status for p in project.plugins] == ["TRAINED", "TRAINED"]
        assert project.to_dict()["status"] == "TRAINED"


def test_plugins_train_in_worker_processes_when_asked(tmp_path, demo, database_url):
    # the server trains in processes so that requests stay quick; results, progress and errors are the same
    from prcore_core.settings import Settings

    with PrCore(
        settings=Settings(data_dir=tmp_path / "data", database_url=database_url, training_processes=True)
    ) as core:
        core.trainer.warm_up()
        event_log = core.upload_event_log(demo.events.head(1500).to_csv(index=False).encode(), filename="demo.csv")
        core.set_columns_definition(event_log.id, demo.columns_definition, demo.case_attributes)
        project = core.create_project(event_log.id, positive_outcome=demo.outcome, treatment=demo.treatment)
        project = project.wait_until("TRAINED", 180)
        assert {p.status for p in project.plugins} == {"TRAINED"}
        knn = next(p for p in project.plugins if p.key == "knn-next-activity")
        assert knn.progress_message == "Trained" and 0 < knn.metrics["accuracy"] <= 1
        assert core.trainer._pool is not None  # they really ran in the pool
        batch = core.prescribe(project.id, demo.events.head(40))
        assert batch and all(prescriptions for prescriptions in batch.values())
