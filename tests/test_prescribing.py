"""The one prescribing path (batch and streaming): numbering from the prefix's key, a failing plugin's reason."""

import datetime as dt

from prcore_core.context import PersistentState
from prcore_core.prescriber import NO_PREDICTION, prescribe_prefixes
from prcore_core.project import PluginState
from prcore_core.status import PluginStatus


def _state(key: str) -> PluginState:
    now = dt.datetime.now(dt.UTC)
    return PluginState(
        id=1,
        key=key,
        name=key,
        prescription_type="NEXT_ACTIVITY",
        description=None,
        status=PluginStatus.STREAMING,
        error=None,
        progress=1.0,
        progress_message=None,
        parameters={},
        additional_info={},
        disabled=False,
        metrics=None,
        created_at=now,
        updated_at=None,
    )


class _Answers:
    def __init__(self, *outputs):
        self.outputs = outputs

    def predict(self, batch, context):
        return [{"output": output} if output else None for output in self.outputs]


class _Fails:
    def predict(self, batch, context):
        raise RuntimeError("the model is broken")


def test_every_prefix_gets_one_prescription_per_plugin_numbered_from_its_key():
    plugins = [(_state("a"), _Answers("x", "y"), PersistentState()), (_state("b"), _Answers("z", None), None)]
    rows = prescribe_prefixes(plugins, batch=object(), keys=[7, 9], now=dt.datetime.now(dt.UTC))
    assert [[p["id"] for p in row] for row in rows] == [[7000, 7001], [9000, 9001]]
    assert [[p["output"] for p in row] for row in rows] == [["x", "z"], ["y", None]]
    assert rows[1][1]["detail"] == NO_PREDICTION


def test_a_failing_plugin_gives_null_outputs_with_its_reason_and_the_others_still_prescribe():
    plugins = [(_state("broken"), _Fails(), None), (_state("fine"), _Answers("x"), None)]
    (row,) = prescribe_prefixes(plugins, batch=object(), keys=[1], now=dt.datetime.now(dt.UTC))
    assert row[0]["output"] is None and "the model is broken" in row[0]["detail"]
    assert row[1]["output"] == "x"
