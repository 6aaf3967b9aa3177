"""Tests of event log reading (``prcore_core.reading``): formats, archives, cleaning and PrCore's error messages."""

from __future__ import annotations

import gzip
import io
import random
import sys
import zipfile

import pandas as pd
import pytest

from prcore_core import errors
from prcore_core.errors import InvalidEventLogError
from prcore_core.reading import ReadingLimits, read_event_log, sniff_separator

CSV = (
    "Case ID,start_time,end_time,AMOUNT_REQ,REG_DATE,Activity,Resource\n"
    "173688,2011-09-30T22:38:44.546,2011-09-30T22:38:44.546,20000, 2011-09-30T22:38:44.546Z, A_SUBMITTED,112\n"
    "173688,2011-09-30T22:38:44.880,2011-09-30T22:38:45,20000, 2011-09-30T22:38:44.546Z, A_PARTLYSUBMITTED,\n"
    "173691,2011-10-01T09:10:00.1+02:00,2011-10-01T09:10:00.123456,5000, 2011-10-01T07:00:00Z, A_SUBMITTED,   \n"
)
HEADER = ["Case ID", "start_time", "end_time", "AMOUNT_REQ", "REG_DATE", "Activity", "Resource"]

XES = """<?xml version="1.0" encoding="UTF-8" ?>
<!-- written by a test -->
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <global scope="event"><date key="time:timestamp" value="1970-01-01T00:00:00.000+01:00"/></global>
  <trace>
    <string key="concept:name" value="c1"/>
    <string key="AMOUNT_REQ" value=" 20000 "/>
    <date key="REG_DATE" value="2011-10-01T00:38:44.546+02:00"/>
    <event>
      <string key="concept:name" value=" A_SUBMITTED "/>
      <string key="lifecycle:transition" value="COMPLETE"/>
      <string key="org:resource" value="112"/>
      <date key="time:timestamp" value="2011-10-01T00:38:44.546+02:00"/>
      <int key="cost" value="5"/>
    </event>
    <event>
      <string key="concept:name" value="A_ACCEPTED"/>
      <string key="lifecycle:transition" value="COMPLETE"/>
      <date key="time:timestamp" value="2011-10-01T11:45:13.917+02:00"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="c2"/>
    <event>
      <string key="concept:name" value="A_SUBMITTED"/>
      <string key="lifecycle:transition" value="START"/>
      <string key="org:resource" value="   "/>
      <date key="time:timestamp" value="2011-10-02T08:00:00.000Z"/>
    </event>
  </trace>
</log>
"""
XES_COLUMNS = [
    "case:concept:name",
    "concept:name",
    "time:timestamp",
    "lifecycle:transition",
    "org:resource",
    "cost",
    "case:AMOUNT_REQ",
    "case:REG_DATE",
]


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def assert_invalid(message: str, source, filename: str | None = None, separator: str | None = None) -> None:
    with pytest.raises(InvalidEventLogError) as caught:
        read_event_log(source, filename, separator)
    assert caught.value.detail == message
    assert caught.value.status_code == 400


def zipped(entries: dict[str, bytes | None]) -> bytes:
    """A zip archive; a ``None`` content makes a directory entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            if content is None:
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, content)
    return buffer.getvalue()


# Separator sniffing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_sniff_separator_finds_each_candidate(separator):
    sample = separator.join(["Case ID", "Activity", "Note"]) + "\n" + separator.join(["1", "A", "x"]) + "\n"
    assert sniff_separator(sample) == separator


def test_sniff_separator_prefers_the_consistent_column_count():
    # Decimal commas give "," an inconsistent count; ";" splits every row into three.
    assert sniff_separator("Case;Activity;Amount\n1;A;1,5\n2;B;20\n3;C;2,25\n") == ";"
    # A header that splits as wide on "," still loses to the separator that fits every row.
    assert sniff_separator("Case;Activity, step, phase;Amount\n1;A;5\n2;B;7\n") == ";"
    # Separators inside quotes do not count.
    assert sniff_separator('Case,Activity\n1,"a;b;c"\n2,"d;e;f"\n') == ","


def test_sniff_separator_defaults_to_comma_without_two_columns():
    assert sniff_separator("just one column\n1\n2\n") == ","
    assert sniff_separator("") == ","


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_csv_separator_is_sniffed(separator):
    frame = read_event_log(CSV.replace(",", separator).encode(), "log.csv")
    assert list(frame.columns) == HEADER
    assert frame.shape == (3, 7)
    assert frame.loc[0, "Activity"] == "A_SUBMITTED"


def test_explicit_separator_is_used_and_backslash_t_means_tab():
    text = "a;b,c\n1;2,3\n"
    assert list(read_event_log(text.encode(), "x.csv", separator=",").columns) == ["a;b", "c"]
    assert list(read_event_log(text.encode(), "x.csv", separator=";").columns) == ["a", "b,c"]
    assert list(read_event_log(b"a\tb\n1\t2\n", "x.csv", separator="\\t").columns) == ["a", "b"]


# CSV cleaning ----------------------------------------------------------------------------------------------------


def test_csv_cells_are_text_stripped_and_empty_cells_missing():
    frame = read_event_log(CSV.encode(), "log.csv")
    assert all(pd.api.types.is_string_dtype(dtype) for dtype in frame.dtypes)
    assert frame["REG_DATE"].tolist()[0] == "2011-09-30T22:38:44.546Z"
    assert frame["Activity"].tolist() == ["A_SUBMITTED", "A_PARTLYSUBMITTED", "A_SUBMITTED"]
    # No type guessing: identifiers and amounts stay strings.
    assert frame["Case ID"].tolist() == ["173688", "173688", "173691"]
    assert frame["AMOUNT_REQ"].tolist() == ["20000", "20000", "5000"]
    # An empty and a blank resource are both missing, not "" and not the string "nan".
    assert frame["Resource"].isna().tolist() == [False, True, True]
    assert "nan" not in frame.astype(object).to_numpy().ravel().tolist()


def test_mixed_precision_timestamps_are_left_as_text():
    frame = read_event_log(CSV.encode(), "log.csv")
    assert frame["start_time"].tolist() == [
        "2011-09-30T22:38:44.546",
        "2011-09-30T22:38:44.880",
        "2011-10-01T09:10:00.1+02:00",
    ]
    assert frame["end_time"].tolist()[1:] == ["2011-09-30T22:38:45", "2011-10-01T09:10:00.123456"]


def test_header_names_are_stripped_and_kept_unique():
    frame = read_event_log(b" Case ID , Activity ,Activity\n1,A,B\n", "x.csv")
    assert list(frame.columns) == ["Case ID", "Activity", "Activity.1"]


def test_bom_is_not_part_of_the_first_column_name():
    frame = read_event_log(b"\xef\xbb\xbfcase_id,Activity\n0,A\n", "small.csv")
    assert list(frame.columns) == ["case_id", "Activity"]


def test_words_that_look_like_missing_values_stay_text():
    frame = read_event_log(b"case,value\n1,NA\n2,null\n3,\n", "x.csv")
    assert frame["value"].tolist()[:2] == ["NA", "null"]
    assert pd.isna(frame["value"].iloc[2])


def test_latin1_file_is_read_when_not_utf8():
    frame = read_event_log("case,activity\n1,Caf\xe9 bestellen\n".encode("latin-1"), "x.csv")
    assert frame["activity"].tolist() == ["Café bestellen"]


def test_short_rows_are_padded_and_blank_rows_dropped():
    frame = read_event_log(b"case,activity,resource\n1,A,R\n2,B\n   \n,,\n", "x.csv")
    assert frame["case"].tolist() == ["1", "2"]
    assert frame["resource"].isna().tolist() == [False, True]


def test_quoted_cells_keep_separators_and_newlines():
    frame = read_event_log(b'case,note\n1,"a, b"\n2,"line 1\nline 2"\n', "x.csv")
    assert frame["note"].tolist() == ["a, b", "line 1\nline 2"]


# Names and paths -------------------------------------------------------------------------------------------------


def test_path_source_takes_its_name_from_the_path(tmp_path):
    path = tmp_path / "LOG.CSV"
    path.write_bytes(CSV.encode())
    assert read_event_log(path).shape == (3, 7)
    assert read_event_log(str(path)).shape == (3, 7)
    renamed = tmp_path / "upload.bin"
    renamed.write_bytes(CSV.encode())
    assert read_event_log(renamed, filename="log.csv").shape == (3, 7)
    assert_invalid(errors.EVENT_LOG_INVALID, renamed)


@pytest.mark.parametrize("filename", ["log.txt", "log.xlsx", "log.csv.bak", "log", "", None])
def test_unaccepted_names_are_invalid(filename):
    assert_invalid(errors.EVENT_LOG_INVALID, CSV.encode(), filename)


# Archives --------------------------------------------------------------------------------------------------------


def test_zip_ignores_macos_clutter_directories_and_dot_files():
    data = zipped(
        {
            "logs/": None,
            "logs/bpic.csv": CSV.encode(),
            "__MACOSX/": None,
            "__MACOSX/logs/._bpic.csv": b"\x00\x05\x16\x07 resource fork",
            "__MACOSX/logs/bpic.csv": b"not the log",
            ".DS_Store": b"\x00\x00\x00\x01Bud1",
            "logs/.DS_Store": b"\x00\x00\x00\x01Bud1",
        }
    )
    frame = read_event_log(data, "bpic2012-CSV.zip")
    assert list(frame.columns) == HEADER
    assert len(frame) == 3


def test_zip_uses_the_separator_for_the_csv_inside():
    data = zipped({"x.csv": CSV.replace(",", ";").encode()})
    assert read_event_log(data, "x.zip").shape == (3, 7)
    assert read_event_log(data, "x.zip", separator=";").shape == (3, 7)
    # A wrong explicit separator leaves one column: not an event log.
    assert_invalid(errors.EVENT_LOG_INVALID, data, "x.zip", separator=",")


def test_zip_with_xes_inside():
    frame = read_event_log(zipped({"bpic2012.XES": XES.encode()}), "bpic2012-XES.zip")
    assert list(frame.columns) == XES_COLUMNS
    assert len(frame) == 3


@pytest.mark.parametrize(
    "entries",
    [
        {"a.csv": CSV.encode(), "b.csv": CSV.encode()},
        {"a.csv": CSV.encode(), "readme.txt": b"hello"},
        {},
        {"__MACOSX/._a.csv": b"fork", ".DS_Store": b"ds", "empty/": None},
    ],
    ids=["two-logs", "log-and-readme", "empty", "only-clutter"],
)
def test_zip_must_hold_exactly_one_file(entries):
    assert_invalid(errors.ZIP_MULTIPLE_FILES, zipped(entries), "x.zip")


@pytest.mark.parametrize("inner", ["log.txt", "log.xlsx", "log.csv.gz", "log"])
def test_zip_must_hold_a_csv_or_xes(inner):
    assert_invalid(errors.ZIP_WRONG_TYPE, zipped({inner: CSV.encode()}), "x.zip")


def test_corrupted_zip_is_bad_zip():
    data = zipped({"x.csv": CSV.encode() * 50})
    assert_invalid(errors.EVENT_LOG_BAD_ZIP, data[: len(data) // 2], "x.zip")
    # Flip bytes of the compressed payload: the directory is intact, the CRC check or inflate fails.
    damaged = bytearray(data)
    for offset in range(60, 90):
        damaged[offset] ^= 0xFF
    assert_invalid(errors.EVENT_LOG_BAD_ZIP, bytes(damaged), "x.zip")


def test_unknown_archive_signature_is_bad_zip():
    assert_invalid(errors.EVENT_LOG_BAD_ZIP, CSV.encode(), "log.zip")
    assert_invalid(errors.EVENT_LOG_BAD_ZIP, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "log.gz")


def test_gzip_disguised_as_zip_holds_a_csv():
    frame = read_event_log(gzip.compress(CSV.encode()), "bpic2012-CSV.zip")
    assert list(frame.columns) == HEADER
    assert frame["Activity"].iloc[0] == "A_SUBMITTED"


def test_gzip_disguised_as_zip_holds_an_xes():
    frame = read_event_log(gzip.compress(XES.encode()), "bpic2012-XES.zip")
    assert list(frame.columns) == XES_COLUMNS


def test_gz_names_are_accepted_and_sniffed_by_content(tmp_path):
    assert read_event_log(gzip.compress(CSV.encode()), "log.csv.gz").shape == (3, 7)
    path = tmp_path / "log.xes.gz"
    path.write_bytes(gzip.compress(("\ufeff  " + XES).encode()))
    assert list(read_event_log(path).columns) == XES_COLUMNS


def test_corrupted_gzip_is_bad_zip():
    data = gzip.compress(CSV.encode() * 100)
    assert_invalid(errors.EVENT_LOG_BAD_ZIP, data[: len(data) // 2], "x.zip")
    assert_invalid(errors.EVENT_LOG_BAD_ZIP, data[:2] + b"\xff" * 40, "x.csv.gz")


# XES -------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xes_frame() -> pd.DataFrame:
    return read_event_log(XES.encode(), "log.xes")


def test_xes_is_flattened_with_case_prefix(xes_frame):
    assert list(xes_frame.columns) == XES_COLUMNS
    assert xes_frame["case:concept:name"].tolist() == ["c1", "c1", "c2"]
    assert xes_frame["concept:name"].tolist() == ["A_SUBMITTED", "A_ACCEPTED", "A_SUBMITTED"]
    assert xes_frame["case:AMOUNT_REQ"].tolist()[:2] == ["20000", "20000"]
    assert pd.isna(xes_frame["case:AMOUNT_REQ"].iloc[2])
    assert not any(str(column).startswith("@@") for column in xes_frame.columns)


def test_xes_dates_are_utc_timestamps(xes_frame):
    for column in ("time:timestamp", "case:REG_DATE"):
        assert isinstance(xes_frame[column].dtype, pd.DatetimeTZDtype)
        assert str(xes_frame[column].dt.tz) == "UTC"
    assert xes_frame["time:timestamp"].tolist() == [
        utc("2011-10-01T00:38:44.546+02:00"),
        utc("2011-10-01T11:45:13.917+02:00"),
        utc("2011-10-02T08:00:00Z"),
    ]
    assert xes_frame["case:REG_DATE"].iloc[0] == utc("2011-09-30T22:38:44.546Z")


def test_xes_other_values_are_stripped_text_with_missing_values(xes_frame):
    assert xes_frame["cost"].tolist()[0] == "5"
    assert pd.api.types.is_string_dtype(xes_frame["cost"].dtype)
    assert xes_frame["cost"].isna().tolist() == [False, True, True]
    # Missing and blank resources are missing, never "nan" or "None".
    assert xes_frame["org:resource"].iloc[0] == "112"
    assert xes_frame["org:resource"].isna().tolist() == [False, True, True]


def test_xes_from_a_path(tmp_path):
    path = tmp_path / "Log.XES"
    path.write_text(XES, encoding="utf-8")
    pd.testing.assert_frame_equal(read_event_log(path), read_event_log(XES.encode(), "log.xes"))


def test_xes_is_read_by_pm4py_when_r4pm_is_missing(monkeypatch, xes_frame):
    monkeypatch.setitem(sys.modules, "r4pm.df", None)  # makes `from r4pm.df import ...` raise ImportError
    frame = read_event_log(XES.encode(), "log.xes")
    assert list(frame.columns) == XES_COLUMNS
    pd.testing.assert_frame_equal(frame, xes_frame, check_dtype=False)


def test_xes_dates_r4pm_cannot_parse_are_read_by_pm4py(capfd):
    # Date-only and space-separated values are not xs:dateTime; r4pm turns them into nulls, pm4py parses them.
    text = XES.replace("2011-10-02T08:00:00.000Z", "2011-10-02").replace(
        "2011-10-01T11:45:13.917+02:00", "2011-10-01 11:45:13"
    )
    frame = read_event_log(text.encode(), "log.xes")
    assert frame["time:timestamp"].tolist()[1:] == [utc("2011-10-01T11:45:13Z"), utc("2011-10-02T00:00:00Z")]
    assert "Failed to parse date" not in capfd.readouterr().err


# Bad input -------------------------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"


@pytest.mark.parametrize("filename", ["log.csv", "log.xes", "log.zip", "log.xes.gz"])
@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "], ids=["zero-bytes", "whitespace"])
def test_empty_files_are_invalid(data, filename):
    assert_invalid(errors.EVENT_LOG_INVALID, data, filename)


def test_empty_file_on_disk_is_invalid(tmp_path):
    for name in ("empty.csv", "empty.xes"):
        (tmp_path / name).write_bytes(b"")
        assert_invalid(errors.EVENT_LOG_INVALID, tmp_path / name)


def random_cells(seed: int) -> bytes:
    """Binary noise (no NUL, not UTF-8) laid out as two comma-separated cells per line: CSV-shaped garbage."""
    rnd = random.Random(seed)

    def cell() -> bytes:
        return rnd.randbytes(12).translate(None, b'\x00\n\r,;|\t"')

    return b"".join(b"\x9c" + cell() + b"," + cell() + b"\n" for _ in range(200))


@pytest.mark.parametrize(
    "data",
    [
        random.Random(0).randbytes(4000),
        random_cells(3),
        bytes(b for b in random.Random(1).randbytes(4000) if b),  # random without NUL bytes
        b"\x00" * 100,
        b"case,activity\n1,\x00A\n",
        PNG * 20,
    ],
    ids=["random", "random-cells", "random-without-nul", "nul-bytes", "nul-in-cell", "png"],
)
@pytest.mark.parametrize("filename", ["log.csv", "log.xes"])
def test_binary_garbage_is_invalid(data, filename):
    assert_invalid(errors.EVENT_LOG_INVALID, data, filename)


def test_nul_bytes_far_into_a_large_csv_are_invalid():
    rows = "".join(f"{case},Activity {case % 7},2011-10-01T00:38:44.546\n" for case in range(5000))
    data = ("case,activity,time\n" + rows).encode()
    assert read_event_log(data, "big.csv").shape == (5000, 3)
    assert len(data) > 2 * 64 * 1024
    assert_invalid(errors.EVENT_LOG_INVALID, data[:-50] + b"\x00" + data[-50:], "big.csv")


def test_binary_garbage_inside_archives_is_invalid():
    garbage = random.Random(2).randbytes(4000)
    assert_invalid(errors.EVENT_LOG_INVALID, zipped({"x.csv": garbage}), "x.zip")
    assert_invalid(errors.EVENT_LOG_INVALID, zipped({"x.xes": garbage}), "x.zip")
    assert_invalid(errors.EVENT_LOG_INVALID, gzip.compress(garbage), "x.zip")


@pytest.mark.parametrize(
    "text",
    ["Case ID,Activity,Resource\n", "Case ID,Activity,Resource", "Case ID,Activity\n,\n , \n"],
    ids=["header-newline", "header-only", "only-empty-rows"],
)
def test_csv_without_data_rows_is_invalid(text):
    assert_invalid(errors.EVENT_LOG_INVALID, text.encode(), "log.csv")


def test_csv_with_fewer_than_two_columns_is_invalid():
    assert_invalid(errors.EVENT_LOG_INVALID, b"case\n1\n2\n", "log.csv")
    assert_invalid(errors.EVENT_LOG_INVALID, b"a,b\n1,2\n", "log.csv", separator=";")


def test_csv_with_too_many_fields_is_invalid():
    assert_invalid(errors.EVENT_LOG_INVALID, b"a,b\n1,2\n3,4,5,6\n", "log.csv")


@pytest.mark.parametrize(
    "text",
    [
        "this is not xml at all",
        XES[: len(XES) // 2],
        '<?xml version="1.0"?><log><trace><event><string key="a" value="b"></trace></log>',
        '<?xml version="1.0"?><log xes.version="1.0"></log>',
        '<?xml version="1.0"?><log><trace><string key="concept:name" value="c1"/></trace></log>',
    ],
    ids=["text", "truncated", "mismatched-tags", "no-traces", "no-events"],
)
def test_bad_xes_is_invalid(text):
    assert_invalid(errors.EVENT_LOG_INVALID, text.encode(), "log.xes")


# Hostile uploads: bounded work, errors that name the problem -----------------------------------------------------


def test_a_zip_bomb_is_refused_while_decompressing_without_materialising_it():
    import tracemalloc

    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb.csv", "w", force_zip64=True) as member,
    ):
        member.write(b"case,activity\n")
        block = b"\x00" * 2**24
        for _ in range(32):  # 512 MiB of NUL bytes, about half a megabyte zipped
            member.write(block)
    bomb = buffer.getvalue()
    assert len(bomb) < 2**20
    limits = ReadingLimits(max_decompressed_bytes=32 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(errors.UploadTooLargeError) as caught:
            read_event_log(bomb, "bomb.zip", limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status_code == 413
    assert "33,554,432 bytes decompressed (limit max_decompressed_bytes)" in caught.value.detail
    assert peak < 64 * 2**20  # the limit and a chunk, never the half gigabyte
    # the same for gzip, whose size is not declared anywhere
    gzipped = gzip.compress(b"case,activity\n" + b"1,A\n" * (2**20))
    with pytest.raises(errors.UploadTooLargeError):
        read_event_log(gzipped, "log.csv.gz", limits=ReadingLimits(max_decompressed_bytes=2**20))
    assert len(read_event_log(gzipped, "log.csv.gz")) == 2**20


def test_a_zip_that_declares_a_huge_member_is_refused_before_reading():
    data = zipped({"x.csv": CSV.encode()})
    with pytest.raises(errors.UploadTooLargeError):
        read_event_log(data, "x.zip", limits=ReadingLimits(max_decompressed_bytes=len(CSV) - 1))


def test_a_csv_of_too_many_columns_is_refused_from_its_header():
    import time

    header = ",".join(f"c{i}" for i in range(100_000))
    wide = (header + "\n" + "\n".join(",".join("1" for _ in range(100_000)) for _ in range(3)) + "\n").encode()
    started = time.perf_counter()
    with pytest.raises(errors.UploadTooLargeError) as caught:
        read_event_log(wide, "wide.csv")
    assert time.perf_counter() - started < 5  # refused from the header, not after parsing 100,000 columns
    assert caught.value.detail == "The event log has 100,000 columns; at most 2,000 are accepted (limit max_columns)"
    assert caught.value.status_code == 413
    assert read_event_log(CSV.encode(), "x.csv", limits=ReadingLimits(max_columns=7)).shape == (3, 7)
    with pytest.raises(errors.UploadTooLargeError, match="7 columns; at most 6"):
        read_event_log(CSV.encode(), "x.csv", limits=ReadingLimits(max_columns=6))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_read(encoding):
    text = "case,activity,resource\n1,Prüfung,Müller\n2,Ende,Zoë\n"
    data = text.encode(encoding)
    if encoding != "utf-16":
        data = ("\ufeff" + text).encode(encoding)
    frame = read_event_log(data, "log.csv")
    assert list(frame.columns) == ["case", "activity", "resource"]
    assert frame["resource"].tolist() == ["Müller", "Zoë"]


def test_a_file_mixing_utf8_and_latin1_is_refused_with_the_line():
    data = "case,activity,resource\n1,Prüfung,Müller\n".encode() + "2,Prüfung,Müller\n".encode("latin-1")
    with pytest.raises(InvalidEventLogError) as caught:
        read_event_log(data, "log.csv")
    assert caught.value.detail == (
        "No valid event log provided: the file mixes encodings: it holds UTF-8 text, but byte 0xfc on line 3 is "
        "not UTF-8; save the file as UTF-8"
    )
    latin1 = "case,activity,resource\n1,Prüfung,Müller\n".encode("latin-1")  # consistently Latin-1: read as such
    assert read_event_log(latin1, "log.csv")["resource"].tolist() == ["Müller"]
