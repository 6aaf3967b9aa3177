"""The dashboard in a real browser: from an uploaded file to live prescriptions, and every view on its own.

Each test starts from a page load; the server runs as a subprocess over a data directory prepared through the
facade (see ``conftest.py``). Screenshots of the main views are saved to ``docs/screenshots/``.
"""

from __future__ import annotations

import re
import time

import requests

FLOW_TIMEOUT = 180_000


def test_invalid_upload_shows_the_core_message_and_nothing_breaks(wb, files):
    wb.open(view="upload")
    wb.upload(".wb-upload-dropper", files / "broken.zip")
    wb.wait_text(".wb-upload-error", "ZIP file is corrupted")
    wb.screenshot("upload-error")
    # another bad file replaces the message; a good one then parses: the page still works
    wb.upload(".wb-upload-dropper", files / "two-files.zip")
    wb.wait_text(".wb-upload-error", "Zip file should contain only one file")
    wb.upload(".wb-upload-dropper", files / "loan-applications.csv")
    wb.wait_text(".wb-upload-summary", re.compile(r"400\s+cases"))
    assert not wb.find(".wb-upload-error").is_visible()


def test_from_upload_to_live_prescriptions(wb, files):
    """The analyst's way: upload, fix a column type, define outcome and treatment, create, train, go live."""
    wb.open()
    wb.click(".wb-new-project")
    wb.wait(".wb-view-upload")
    wb.upload(".wb-upload-dropper", files / "loan-applications.csv")
    wb.wait_text(".wb-upload-summary", re.compile(r"400\s+cases"))
    wb.wait(".wb-upload-preview .tabulator-row")
    wb.wait_text(".wb-upload-dropper", "Upload complete")
    wb.screenshot("upload")
    wb.click(".wb-upload-next")
    # columns: inferred types are preselected; amount and credit_score are numbers, four case attributes
    wb.wait(".wb-col-type-amount select")
    assert wb.find(".wb-col-type-activity select").input_value() == "ACTIVITY"
    assert wb.find(".wb-col-type-amount select").input_value() == "— (not used)"
    wb.select(".wb-col-type-activity", "TEXT")
    wb.wait_text(".wb-col-validation", "No activity column found")
    wb.select(".wb-col-type-activity", "ACTIVITY")
    wb.select(".wb-col-type-amount", "NUMBER")
    wb.select(".wb-col-type-credit_score", "NUMBER")
    for column in ("amount", "loan_goal", "credit_score", "channel"):
        wb.find(f".wb-col-case-{column} input").check()
    wb.wait_text(".wb-col-validation", "The definition is valid")
    wb.click(".wb-col-apply")
    wb.wait(".wb-chart-activities canvas")
    wb.wait_text(".wb-analysis-summary", re.compile(r"14\s+activities"))
    wb.screenshot("columns")
    wb.click(".wb-col-next")
    # outcome and treatment: activity values come from the log; live counts before the project exists
    wb.wait(".wb-outcome .wb-cond-value-select select")
    wb.select(".wb-outcome .wb-cond-value-select", "Approve loan")
    wb.wait_text(".wb-outcome-count", re.compile(r"of 400 cases .* labelled positive"))
    operators = wb.find(".wb-outcome .wb-cond-operator select").locator("option").all_inner_texts()
    assert operators == ["EQUAL", "NOT_EQUAL", "CONTAINS", "NOT_CONTAINS"]
    wb.click(".wb-treatment .wb-add-or")
    wb.wait(".wb-treatment .wb-cond-value-select select")
    wb.select(".wb-treatment .wb-cond-value-select", "Call customer")
    wb.wait_text(".wb-treatment-count", re.compile(r"of 400 cases .* treated"))
    # plugin settings: forms generated from the plugins' declared parameters; additional info checked by the plugin
    wb.find(".wb-plugin-form-knn-next-activity .card-header").click()
    wb.fill(".wb-plugin-form-knn-next-activity .wb-param-n_neighbors", "7")
    wb.find(".wb-plugin-form-resource-allocation .card-header").click()
    wb.wait_text(".wb-plugin-info-message-resource-allocation", "available_resources")
    info = wb.find(".wb-plugin-info-resource-allocation textarea")
    info.fill('{"available_resources": ["Karim", "Lena"]')
    info.blur()
    wb.wait_text(".wb-plugin-info-message-resource-allocation", "not valid JSON")
    info.fill('{"available_resources": ["Karim", "Lena"], "treatment_duration": "1h"}')
    info.blur()
    wb.page.locator(".wb-plugin-info-message-resource-allocation .wb-alert").wait_for(state="hidden")
    wb.fill(".wb-project-name-input", "Loans from the browser")
    wb.screenshot("definition")
    wb.click(".wb-create-project")
    # training: progress live, then metrics per plugin
    wb.wait(".wb-view-training")
    wb.wait_text(".wb-training-header", "Loans from the browser")
    wb.wait_text(".wb-training-header", "TRAINED", timeout=FLOW_TIMEOUT)
    wb.wait(".wb-plugin-plot canvas")
    wb.wait_text(".wb-plugin-knn-next-activity .wb-plugin-settings", "n_neighbors=7")
    # live: a fast simulation; prescriptions appear in the table, a case can be drilled into
    wb.click(".wb-go-live")
    wb.wait(".wb-view-live")
    wb.fill(".wb-live-interval", "0.1")  # slow enough that the replay still runs when Stop is clicked
    wb.click(".wb-live-start")
    wb.wait_text(".wb-live-status", "SIMULATING")
    wb.wait(".wb-live-table .tabulator-row")
    wb.wait_text(".wb-live-table", re.compile(r"\(\d+%\)"))  # a next-activity prescription with its probability
    wb.open_live_case()
    wb.wait(".wb-case-prescriptions .tabulator-row")
    wb.click(".wb-live-stop")
    wb.wait_text(".wb-live-status", "TRAINED")


def test_projects_home_rename_and_delete_with_confirmation(wb, files, api_headers):
    headers = api_headers
    with (files / "loan-applications.csv").open("rb") as file:
        uploaded = requests.post(f"{wb.server.url}/event_log", files={"file": ("throwaway.csv", file)},
                                 headers=headers, timeout=60).json()  # fmt: skip
    definition = {"case_id": "CASE_ID", "activity": "ACTIVITY", "timestamp": "TIMESTAMP", "resource": "RESOURCE"}
    requests.put(f"{wb.server.url}/event_log/{uploaded['event_log_id']}", json={"columns_definition": definition},
                 headers=headers, timeout=60).raise_for_status()  # fmt: skip
    outcome = [[{"column": "activity", "operator": "EQUAL", "value": "Approve loan"}]]
    created = requests.post(f"{wb.server.url}/project", json={"event_log_id": uploaded["event_log_id"],
                                                              "positive_outcome": outcome},
                            headers=headers, timeout=60).json()["project"]  # fmt: skip
    project = f".wb-project-{created['id']}"
    wb.open()
    wb.wait_text(".wb-project-1", "Demo: loan applications")
    wb.wait_text(".wb-project-1 .wb-project-plugins", "KNN next activity")
    wb.wait(project)
    # rename
    wb.click(f"{project} .wb-rename")
    wb.fill(f"{project} .wb-rename-input", "Throwaway project")
    wb.click(f"{project} .wb-rename-save")
    wb.wait_text(f"{project} .wb-project-name", "Throwaway project")
    wb.screenshot("projects")
    # an empty name is refused with the core's message, next to the project
    wb.click(f"{project} .wb-rename")
    wb.fill(f"{project} .wb-rename-input", "  ")
    wb.click(f"{project} .wb-rename-save")
    wb.wait_text(f"{project} .wb-project-message", "A project name cannot be empty")
    wb.click(f"{project} .wb-rename-cancel")
    # delete asks first; keeping it keeps it
    wb.click(f"{project} .wb-delete")
    wb.wait_text(f"{project}", "This cannot be undone")
    wb.click(f"{project} .wb-delete-cancel")
    assert wb.find(project).is_visible()
    wb.click(f"{project} .wb-delete")
    wb.click(f"{project} .wb-delete-confirm")
    wb.page.locator(project).wait_for(state="detached")
    assert wb.find(".wb-project-1").is_visible()


def test_training_view_shows_metrics_by_prefix_length(wb):
    wb.open(view="training", project=1)
    wb.wait_text(".wb-training-header", "TRAINED")
    for plugin in ("knn-next-activity", "random-forest-alarm", "causal-treatment-effect"):
        wb.wait(f".wb-plugin-{plugin} .wb-plugin-metrics")
        wb.wait(f".wb-plugin-{plugin} .wb-plugin-plot canvas")
    wb.wait_text(".wb-plugin-knn-next-activity .wb-plugin-metrics", "accuracy")
    for plugin in ("boosted-next-activity", "random-forest-alarm"):  # each beside its baselines, same prefixes
        wb.wait_text(f".wb-plugin-{plugin} .wb-baselines", "Gradient boosting on aggregate and last-state features")
        wb.wait_text(f".wb-plugin-{plugin} .wb-baseline-verdict", "than the strongest baseline")
        wb.wait(f".wb-plugin-{plugin} .wb-plugin-plot canvas")
    wb.wait_text(".wb-plugin-remaining-time .wb-plugin-metrics", "mae_days")
    wb.screenshot("training")
    # the project's definition opens in the editor, ready to be changed and retrained
    wb.click(".wb-edit-definition")
    wb.wait_text(".wb-create-project", "Redefine and retrain")
    assert wb.find(".wb-outcome .wb-cond-value-select select").input_value() == "Approve loan"
    assert wb.find(".wb-treatment .wb-cond-value-select select").input_value() == "Call customer"
    wb.wait_text(".wb-outcome-count", "labelled positive")


def test_process_map(wb):
    wb.open(view="process", project=1)
    wb.wait(".wb-dfg canvas")
    wb.wait_text(".wb-dfg-summary", re.compile(r"400 cases · 14 of 14 activities"))
    wb.screenshot("process-map")


def test_live_simulation_charts_and_case_drill_down(wb):
    wb.open(view="live", project=1)
    wb.wait_text(".wb-live-status", "TRAINED")
    wb.fill(".wb-live-interval", "0.08")  # slow enough that the replay still runs when a row is clicked
    wb.click(".wb-live-start")
    wb.wait_text(".wb-live-status", "SIMULATING")
    wb.wait_text(".wb-live-counter", re.compile(r"[1-9]\d{2,} events received"))  # at least 100 events
    wb.wait_text(".wb-live-table", re.compile(r"ALARM \d+%|ok \d+%"))
    wb.wait_text(".wb-live-table", re.compile(r"treat"))
    wb.open_live_case()
    wb.wait(".wb-case-prescriptions .tabulator-row")
    wb.screenshot("live")
    wb.click(".wb-live-stop")
    wb.wait_text(".wb-live-status", "TRAINED")
    # paused, the table stands still: a clicked event opens its own case
    wb.find(".wb-live-freeze input").check()
    newest = wb.page.locator(".wb-live-table .tabulator-row .tabulator-cell[tabulator-field=event]").first
    last, deadline = None, time.monotonic() + 30
    while (now := newest.inner_text()) != last and time.monotonic() < deadline:  # until an update in flight landed
        last = now
        wb.page.wait_for_timeout(600)  # longer than one drain of the live view
    row = wb.page.locator(".wb-live-table .tabulator-row").nth(3)
    case = row.locator(".tabulator-cell[tabulator-field=case]").inner_text()
    row.click()
    wb.wait_text(".wb-case-header", f"Case {case}")
    wb.wait(".wb-case-events .tabulator-row")
    wb.click(".wb-live-clear")
    wb.page.locator(".wb-live-table .tabulator-row").first.wait_for(state="detached")


def test_ongoing_cases_prescriptions_and_csv_download(wb, files):
    wb.open(view="ongoing", project=1)
    wb.upload(".wb-ongoing-dropper", files / "ongoing-cases.csv")
    wb.wait_text(".wb-ongoing-status", re.compile(r"60\s+cases"))
    wb.wait(".wb-ongoing-table .tabulator-row")
    wb.screenshot("ongoing")
    with wb.page.expect_download() as download:
        wb.click(".wb-ongoing-download")
    text = open(download.value.path()).read()  # noqa: SIM115
    assert text.splitlines()[0] == "case_id,plugin,plugin_name,type,prescription,output,detail,extra"
    assert len(text.splitlines()) > 60


def test_ongoing_cases_with_wrong_columns_show_the_core_message(wb, files):
    wb.open(view="ongoing", project=1)
    wb.upload(".wb-ongoing-dropper", files / "two-files.zip")
    wb.wait_text(".wb-ongoing-error", "Zip file should contain only one file")


def test_serve_demo_opens_on_a_trained_demo_project(start_server, workbench_on):
    wb = workbench_on(start_server("--demo", "--demo-cases", "300")).open()
    wb.wait(".wb-view-training")
    wb.wait_text(".wb-training-header", "Demo: loan applications")
    wb.wait_text(".wb-training-header", "TRAINED", timeout=FLOW_TIMEOUT)
    wb.wait(".wb-plugin-plot canvas")
