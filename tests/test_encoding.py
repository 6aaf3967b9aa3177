"""The shared prefix encoder: each block's values on tiny hand-made logs, unseen values, no leaks between cases."""

import numpy as np
import pandas as pd
import pytest

from prcore_core.columns import Family
from prcore_core.dataset import Attribute, PrefixBatch
from prcore_core.encoding import BLOCKS, ENCODINGS, UNSEEN, PrefixEncoder, TreeEncoder, blocks_for, context_keys

AMOUNT = Attribute("CASE_ATTRIBUTE_NUMBER_amount", "amount", "case", Family.NUMBER)
CHANNEL = Attribute("CASE_ATTRIBUTE_TEXT_channel", "channel", "case", Family.TEXT)
STAGE = Attribute("EVENT_ATTRIBUTE_TEXT_stage", "stage", "event", Family.TEXT)
SCORE = Attribute("EVENT_ATTRIBUTE_NUMBER_score", "score", "event", Family.NUMBER)
ATTRIBUTES = (AMOUNT, CHANNEL, STAGE, SCORE)


def events(rows, unit="us") -> pd.DataFrame:
    """Canonical events from ``(case, activity, timestamp, resource, amount, channel, stage, score)`` rows."""
    frame = pd.DataFrame(
        rows,
        columns=["CASE_ID", "ACTIVITY", "TIMESTAMP", "RESOURCE", AMOUNT.name, CHANNEL.name, STAGE.name, SCORE.name],
    )
    frame["TIMESTAMP"] = pd.to_datetime(frame["TIMESTAMP"], utc=True).astype(f"datetime64[{unit}, UTC]")
    for column in ("CASE_ID", "ACTIVITY", "RESOURCE", CHANNEL.name, STAGE.name):
        frame[column] = frame[column].astype("string")
    return frame


TRAIN = events(
    [
        ("a", "x", "2024-01-01T08:00:00Z", "r1", 100.0, "web", "s1", 1.0),
        ("a", "y", "2024-01-01T10:00:00Z", "r2", 100.0, "web", None, None),
        ("a", "z", "2024-01-02T10:30:00Z", "r1", 100.0, "web", "s2", 3.0),
        ("b", "x", "2024-01-03T09:00:00Z", "r2", 300.0, "shop", None, None),
        ("b", "x", "2024-01-03T09:00:30Z", None, 300.0, "shop", "s1", 5.0),
    ]
)


def frame(encoder: PrefixEncoder, batch: PrefixBatch) -> pd.DataFrame:
    return pd.DataFrame(encoder.transform(batch), columns=encoder.feature_names_)


def every_prefix(table: pd.DataFrame) -> PrefixBatch:
    return PrefixBatch(table, np.arange(len(table)), ATTRIBUTES)


@pytest.fixture(scope="module")
def encoder():
    return PrefixEncoder(BLOCKS, history=2, max_categories=1).fit(TRAIN, ATTRIBUTES)


def test_names_blocks_and_kinds_describe_every_column(encoder):
    features = encoder.transform(every_prefix(TRAIN))
    assert features.shape == (5, len(encoder.feature_names_)) and features.dtype == np.float32
    assert len(encoder.feature_blocks_) == len(encoder.feature_kinds_) == len(encoder.feature_names_)
    assert set(encoder.feature_blocks_) == set(BLOCKS) - {"duration"}  # no end times in this log
    assert set(encoder.feature_kinds_) == {"binary", "count", "number"}
    # the default unit keeps the historical names
    assert {"log_elapsed_hours", "log_hours_since_previous"} <= set(encoder.feature_names_)
    assert len(set(encoder.feature_names_)) == len(encoder.feature_names_)


def test_last_activities_one_hot_per_position(encoder):
    table = frame(encoder, every_prefix(TRAIN))
    last1 = table.filter(like="last_1=").idxmax(axis=1).tolist()
    assert last1 == ["last_1=x", "last_1=y", "last_1=z", "last_1=x", "last_1=x"]
    assert table.filter(like="last_1=").sum(axis=1).tolist() == [1.0] * 5
    # length-1 prefixes have no second-to-last activity: the whole position is zero
    assert table.filter(like="last_2=").sum(axis=1).tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert table.loc[2, "last_2=y"] == 1.0 and table.loc[4, "last_2=x"] == 1.0


def test_counts_and_presence(encoder):
    table = frame(encoder, every_prefix(TRAIN))
    assert table["count=x"].tolist() == [1.0, 1.0, 1.0, 1.0, 2.0]
    assert table["count=z"].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert table["seen=x"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    assert table[f"count={UNSEEN}"].sum() == 0


def test_time_block_in_hours_and_seconds():
    batch = every_prefix(TRAIN)
    hours = frame(PrefixEncoder(("time",)).fit(TRAIN), batch)
    np.testing.assert_allclose(hours["prefix_length"], np.log1p([1, 2, 3, 1, 2]), rtol=1e-6)
    np.testing.assert_allclose(hours["log_elapsed_hours"], np.log1p([0, 2, 26.5, 0, 30 / 3600]), rtol=1e-6)
    np.testing.assert_allclose(hours["log_hours_since_previous"], np.log1p([0, 2, 24.5, 0, 30 / 3600]), rtol=1e-6)
    assert hours["weekday"].tolist() == pytest.approx([0, 0, 1 / 6, 2 / 6, 2 / 6])  # Monday 1 January 2024
    assert hours["hour"].tolist() == pytest.approx([8 / 23, 10 / 23, 10 / 23, 9 / 23, 9 / 23])
    seconds = frame(PrefixEncoder(("time",), time_unit="seconds").fit(TRAIN), batch)
    np.testing.assert_allclose(seconds["log_seconds_since_previous"], np.log1p([0, 7200, 88200, 0, 30]), rtol=1e-6)


def test_time_features_do_not_depend_on_the_datetime_resolution():
    encoder = PrefixEncoder(("time",)).fit(TRAIN)
    microseconds = encoder.transform(every_prefix(TRAIN))
    nanoseconds = encoder.transform(
        every_prefix(events(TRAIN.assign(TIMESTAMP=TRAIN["TIMESTAMP"].astype(str)).to_numpy().tolist(), unit="ns"))
    )
    np.testing.assert_allclose(microseconds, nanoseconds, rtol=1e-6)


def test_duration_block_uses_start_and_end():
    table = TRAIN.rename(columns={"TIMESTAMP": "START_TIMESTAMP"})
    table["END_TIMESTAMP"] = table["START_TIMESTAMP"] + pd.to_timedelta([30, 0, 3600, 60, 0], unit="min")
    encoder = PrefixEncoder(("duration", "time"), time_unit="minutes").fit(table)
    assert encoder.feature_names_[-1] == "log_duration_minutes"  # blocks come in a fixed order
    values = frame(encoder, every_prefix(table))
    np.testing.assert_allclose(values["log_duration_minutes"], np.log1p([30, 0, 3600, 60, 0]), rtol=1e-6)
    # time is measured on the start (the ordering column)
    np.testing.assert_allclose(values["log_elapsed_minutes"], np.log1p([0, 120, 1590, 0, 0.5]), rtol=1e-6)
    # a log without end times has no duration feature at all
    assert PrefixEncoder(("duration",)).fit(TRAIN).feature_names_ == []


def test_resource_of_the_last_event(encoder):
    table = frame(encoder, every_prefix(TRAIN))
    resources = table.filter(like="resource=")
    assert list(resources.columns) == ["resource=r1", f"resource={UNSEEN}"]  # max_categories=1: r1 and "other"
    assert resources.to_numpy().tolist() == [[1, 0], [0, 1], [1, 0], [0, 1], [0, 0]]  # missing: no column


def test_attributes_numbers_categories_and_forward_fill_within_the_case_only(encoder):
    table = frame(encoder, every_prefix(TRAIN))
    assert table[AMOUNT.name].tolist() == pytest.approx([-0.0, -0.0, -0.0, 1.0, 1.0])  # (x - median) / 10-90 range
    assert table[f"{CHANNEL.name}=web"].tolist() == [1, 1, 1, 0, 0]
    assert table[f"{CHANNEL.name}={UNSEEN}"].tolist() == [0, 0, 0, 1, 1]
    # the stage of case a's second event is carried over from its first event ...
    assert table[f"{STAGE.name}=s1"].tolist() == [1, 1, 0, 0, 1]
    # ... but case b's first event, with no stage, does not inherit case a's last stage (s2, unseen here)
    assert table[f"{STAGE.name}={UNSEEN}"].tolist() == [0, 0, 1, 0, 0]
    assert table[f"{SCORE.name}:missing"].tolist() == [0, 0, 0, 1, 0]


def test_unseen_activities_land_in_the_unseen_column_only(encoder):
    table = events(
        [
            ("c", "x", "2024-02-01T08:00:00Z", "r1", 1.0, "web", "s1", 1.0),
            ("c", "never seen", "2024-02-01T09:00:00Z", "r9", 1.0, "fax", "s9", 1.0),
        ]
    )
    row = frame(encoder, every_prefix(table)).iloc[1]
    assert row[f"last_1={UNSEEN}"] == 1.0
    assert row[[f"last_1={a}" for a in ("x", "y", "z")]].sum() == 0.0
    assert row["last_2=x"] == 1.0
    assert row[f"count={UNSEEN}"] == 1.0 and row["count=x"] == 1.0 and row[["count=y", "count=z"]].sum() == 0
    assert row[f"resource={UNSEEN}"] == 1.0 and row[f"{CHANNEL.name}={UNSEEN}"] == 1.0
    codes = encoder.activity_codes(table)
    assert codes.tolist() == [0, 3]  # x is 0; the unseen code is the number of known activities, never another's


def test_codes_of_small_and_large_tables_agree(encoder):
    values = pd.Series(["x", "z", None, "q", "y"] * 100, dtype="string")
    assert encoder.activities_.codes(values[:5]).tolist() == [0, 2, -1, 3, 1]
    np.testing.assert_array_equal(encoder.activities_.codes(values), np.tile([0, 2, -1, 3, 1], 100))


def test_cases_of_one_batch_do_not_leak_into_each_other(encoder):
    together = encoder.transform(every_prefix(TRAIN))
    alone = encoder.transform(every_prefix(TRAIN[TRAIN["CASE_ID"] == "b"].reset_index(drop=True)))
    np.testing.assert_array_equal(together[3:], alone)


def test_a_batch_equals_its_prefixes_encoded_one_by_one(encoder):
    batch = encoder.transform(every_prefix(TRAIN))
    separate = [
        PrefixBatch.from_prefixes([TRAIN.iloc[start : end + 1]], ATTRIBUTES)
        for start, end in [(0, 0), (0, 1), (0, 2), (3, 3), (3, 4)]
    ]
    np.testing.assert_array_equal(batch, np.vstack([encoder.transform(one) for one in separate]))
    # and a batch naming only some prefixes equals the matching rows of the full batch
    np.testing.assert_array_equal(encoder.transform(PrefixBatch(TRAIN, np.array([1, 4]), ATTRIBUTES)), batch[[1, 4]])


def test_last_activities_and_context_keys(encoder):
    last = encoder.last_activities(every_prefix(TRAIN), 3)
    assert last.tolist() == [[0, -1, -1], [1, 0, -1], [2, 1, 0], [0, -1, -1], [0, 0, -1]]
    keys = context_keys(last, n_codes=4)
    assert keys[0] == keys[3] and len(set(keys.tolist())) == 4
    # contexts too long for one integer still compare exactly
    long = np.tile(last, (1, 20))
    long_keys = context_keys(long, n_codes=4)
    assert long_keys[0] == long_keys[3] and len(set(long_keys.tolist())) == 4
    # codes beyond the vocabulary count as unseen
    assert context_keys(np.array([[7]]), n_codes=4)[0] == context_keys(np.array([[3]]), n_codes=4)[0]


def test_empty_batches_and_invalid_options(encoder):
    assert encoder.transform(PrefixBatch(TRAIN, np.array([], dtype=int))).shape == (0, len(encoder.feature_names_))
    with pytest.raises(ValueError, match="Unknown feature block"):
        PrefixEncoder(("last", "colour"))
    with pytest.raises(ValueError, match="Unknown time unit"):
        PrefixEncoder(time_unit="fortnights")
    assert all(set(blocks_for(name)) <= set(BLOCKS) for name in ENCODINGS)


def test_a_wide_log_is_encoded_within_the_attribute_budget():
    """100 text attributes of 30 values and 40 numbers would be 3,180 attribute columns; the budget keeps 120."""
    rng = np.random.default_rng(0)
    n = 600
    wide = pd.DataFrame(
        {
            "CASE_ID": pd.array(np.repeat([f"c{i}" for i in range(n // 3)], 3), dtype="string"),
            "ACTIVITY": pd.array(rng.choice(["x", "y"], n), dtype="string"),
            "TIMESTAMP": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        }
    )
    attributes = []
    for i in range(100):
        skew = rng.dirichlet(np.full(30, 0.3))  # a few frequent values per attribute, many rare ones
        name = f"EVENT_ATTRIBUTE_TEXT_t{i:03d}"
        wide[name] = pd.array(rng.choice([f"v{k}" for k in range(30)], n, p=skew), dtype="string")
        attributes.append(Attribute(name, f"t{i:03d}", "event", Family.TEXT))
    for i in range(40):
        name = f"EVENT_ATTRIBUTE_NUMBER_n{i:03d}"
        wide[name] = rng.normal(size=n)
        attributes.append(Attribute(name, f"n{i:03d}", "event", Family.NUMBER))
    encoder = PrefixEncoder(blocks=("attributes",), max_attribute_features=120).fit(wide, attributes)
    assert len(encoder.feature_names_) == 120
    numbers = [a.name for a, kind, _ in encoder.attributes_ if kind == "number"]
    assert numbers == [a.name for a in attributes[100:]]  # numbers first: 80 columns
    texts = {a.name: state.values for a, kind, state in encoder.attributes_ if kind == "category"}
    assert sum(len(values) + 1 for values in texts.values()) == 40
    assert set(encoder.skipped_attributes_) == {a.name for a in attributes[:100]} - set(texts)
    # the values kept are the most frequent pairs over all text attributes
    counts = {(name, v): c for name in wide.columns[3:103] for v, c in wide[name].value_counts().items()}
    kept = {(name, v) for name, values in texts.items() for v in values}
    least_kept = min(counts[pair] for pair in kept)
    assert sorted(counts.values(), reverse=True)[0] == max(counts[pair] for pair in kept)
    assert all(c <= least_kept for pair, c in counts.items() if pair not in kept and pair[0] in texts)
    assert encoder.transform(PrefixBatch(wide, np.arange(n))).shape == (n, len(encoder.feature_names_))
    # the tree encoder has a column per attribute: it takes the first max_attributes of them
    trees = TreeEncoder(max_attributes=10).fit(wide, attributes)
    assert [a.name for a, _ in trees.attributes_] == [a.name for a in attributes[:10]]
    assert trees.skipped_attributes_ == [a.name for a in attributes[10:]]
    assert trees.transform(PrefixBatch(wide, np.arange(n))).shape == (n, len(trees.feature_names_))
    # within the budget nothing changes: each attribute keeps its max_categories most frequent values
    roomy = PrefixEncoder(blocks=("attributes",), max_categories=5).fit(wide, attributes[:3])
    for attribute, _, state in roomy.attributes_:
        assert state.values == sorted(wide[attribute.name].value_counts().index[:5])
