"""Reading uploaded event logs (CSV, XES, zipped or gzipped) into a dataframe (reference 2.1 and 5.1).

An upload is the only place where arbitrary user bytes enter the system, so this module turns *every* failure of
the underlying parsers (pandas, pyarrow, r4pm, pm4py, zipfile, gzip) into an :class:`~prcore_core.errors.
InvalidEventLogError` carrying one of PrCore's messages; callers never see a parser's own exception type.

CSV cells stay text (parsing by column family happens later, in :mod:`prcore_core.values`, once the user has said
what each column means). XES logs are typed by the format itself, so their dates are kept as UTC timestamps and
everything else becomes text, which gives both formats the same shape downstream.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import itertools
import logging
import os
import re
import sys
import tempfile
import threading
import warnings
import zipfile
import zlib
from dataclasses import dataclass

import pandas as pd

from prcore_core import errors
from prcore_core.values import to_datetime

logger = logging.getLogger(__name__)

#: Delimiters tried by :func:`sniff_separator`, in order of preference on ties.
SEPARATORS = (",", ";", "\t", "|")
#: Accepted upload name endings (case-insensitive); ``.gz`` covers ``.csv.gz`` and ``.xes.gz``.
EXTENSIONS = (".csv", ".xes", ".zip", ".gz")

_SAMPLE_SIZE = 64 * 1024
_SNIFF_ROWS = 50
_BOM = b"\xef\xbb\xbf"
# Control characters that never occur in a text file; tab, newlines and form feed are legitimate.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# The text dtype of ``read_csv(dtype=str)``: ``str`` (missing = NaN) on pandas 3, ``object`` before.
_TEXT = pd.Series([], dtype=str).dtype
# Standard XES columns first, in a fixed order, so that two reads of one log have the same header whatever order
# the parser produced (r4pm's column order changes from run to run).
_XES_LEADING = ("case:concept:name", "concept:name", "time:timestamp", "lifecycle:transition", "org:resource")
# r4pm reports values it could not parse on the process's stderr (file descriptor 2), not as an exception.
_R4PM_DATE_FAILURE = "Failed to parse date"
_R4PM_MESSAGES = (_R4PM_DATE_FAILURE, "Could not parse UUID")
# Redirecting file descriptor 2 is process-wide: two overlapping redirections would restore each other's
# targets and leave stderr pointing at a deleted file, so they are serialised.
_STDERR_LOCK = threading.Lock()


#: Bytes decompressed at a time from an archive: a bomb is stopped after at most one chunk past the limit.
_CHUNK = 8 * 2**20
# Well-formed UTF-8 sequences of two to four bytes: a file holding some of them beside bytes that are not UTF-8
# mixes encodings (Latin-1 would turn its "ü" into "Ã¼"), while a Latin-1 file practically never holds one.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class ReadingLimits:
    """Bounds on the work one upload may cause, so that no file (a zip bomb, a CSV of 100,000 columns) can exhaust
    the server's memory or time; each breach is an :class:`~prcore_core.errors.UploadTooLargeError` (413) that
    names the limit. ``Settings`` carries the server's values.

    Parameters
    ----------
    max_decompressed_bytes
        Largest log inside a zip or gzip archive, decompressed (checked while decompressing, in chunks).
    max_columns
        Most columns of a CSV (checked on its header, before parsing).
    """

    max_decompressed_bytes: int = 2 * 2**30
    max_columns: int = 2_000


def _invalid(message: str = errors.EVENT_LOG_INVALID) -> errors.InvalidEventLogError:
    return errors.InvalidEventLogError(message)


def read_event_log(
    source: bytes | str | os.PathLike,
    filename: str | None = None,
    separator: str | None = None,
    limits: ReadingLimits = ReadingLimits(),
) -> pd.DataFrame:
    """Read an uploaded event log into a dataframe with one row per event.

    Parameters
    ----------
    source : bytes, str or os.PathLike
        The raw upload, or the path of a file.
    filename : str, optional
        The uploaded file's name; it decides the format (``.csv``, ``.xes``, ``.zip``, ``.gz``, any case).
        Required for bytes; defaults to the path's name for a path.
    separator : str, optional
        CSV delimiter (also for a CSV inside a zip or gzip). ``None`` sniffs it among ``,`` ``;`` tab ``|``; the
        two characters ``\\t`` (as typed into a form) mean a tab.
    limits : ReadingLimits, optional
        Bounds on the decompressed size and the number of columns.

    Returns
    -------
    pandas.DataFrame
        CSV: every column text, header names and cells stripped, empty cells missing. XES: event attributes by key,
        trace attributes prefixed ``case:``, date attributes as UTC ``datetime64``, every other column stripped
        text with missing values missing.

    Raises
    ------
    InvalidEventLogError
        ``EVENT_LOG_INVALID`` for an unaccepted name, an empty or binary file, a CSV without data rows or with
        fewer than two columns, an XES that is not XML or has no events; ``EVENT_LOG_BAD_ZIP`` for an archive
        that is neither zip nor gzip or is corrupted; ``ZIP_MULTIPLE_FILES`` / ``ZIP_WRONG_TYPE`` for a zip not
        holding exactly one CSV or XES file; a CSV that is neither UTF-8, UTF-16 (with its byte order mark) nor
        consistently Latin-1, with the line of the first byte that is not UTF-8.
    UploadTooLargeError
        A breach of ``limits``, naming the limit.
    OSError
        When ``source`` is a path that cannot be opened: a caller's mistake, not a bad upload.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        path, data, name = None, bytes(source), filename or ""
    else:
        path = os.fspath(source)
        data, name = None, filename or os.path.basename(path)
    kind = _kind_of(name)
    if kind == "xes" and path is not None:
        # Hand the file to the parser as is: no need to hold a large XES in memory just to copy it.
        with open(path, "rb") as file:
            _check_xml_head(file.read(_SAMPLE_SIZE))
        return _read_xes(path)
    if data is None:
        with open(path, "rb") as file:
            data = file.read()
    if not data or data.isspace():
        raise _invalid()
    if kind == "zip":
        kind, data = _unpack(data, limits)
    if kind == "csv":
        return _read_csv(data, separator, limits)
    _check_xml_head(data[:_SAMPLE_SIZE])
    # Both XES parsers read from a path; a private directory keeps the temporary copy out of anyone's way.
    with tempfile.TemporaryDirectory(prefix="prcore-xes-") as folder:
        target = os.path.join(folder, "log.xes")
        with open(target, "wb") as file:
            file.write(data)
        del data
        return _read_xes(target)


def check_file_name(name: str) -> None:
    """Refuse at once a file whose name has no accepted extension (``No valid event log provided``)."""
    _kind_of(name)


def _kind_of(name: str) -> str:
    """``csv``, ``xes`` or ``zip`` (for both archive kinds, sniffed later) from an upload's name."""
    lower = name.strip().lower()
    for extension in EXTENSIONS:
        if lower.endswith(extension):
            return "zip" if extension == ".gz" else extension[1:]
    raise _invalid()


# Archives --------------------------------------------------------------------------------------------------------


def _unpack(data: bytes, limits: ReadingLimits) -> tuple[str, bytes]:
    """The format (``csv``/``xes``) and bytes of the single log inside a zip or gzip archive.

    The archive kind comes from the magic bytes, not the name, because macOS users upload gzip files named
    ``.zip`` (reference 5.1).
    """
    if data.startswith(b"PK"):
        return _unzip(data, limits)
    if data.startswith(b"\x1f\x8b"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
                content = _read_bounded(archive, limits)
        except (OSError, EOFError, zlib.error) as error:
            raise _invalid(errors.EVENT_LOG_BAD_ZIP) from error
        return ("xes" if _looks_like_xml(content) else "csv"), content
    raise _invalid(errors.EVENT_LOG_BAD_ZIP)


def _read_bounded(stream, limits: ReadingLimits) -> bytes:
    """All of a decompressing stream, read in chunks, refused as soon as it exceeds the decompressed-size limit."""
    content = io.BytesIO()
    while chunk := stream.read(_CHUNK):
        if content.tell() + len(chunk) > limits.max_decompressed_bytes:
            raise _too_large(limits)
        content.write(chunk)
    return content.getvalue()


def _too_large(limits: ReadingLimits) -> errors.UploadTooLargeError:
    return errors.UploadTooLargeError(
        f"The event log inside the archive is larger than {limits.max_decompressed_bytes:,} bytes decompressed "
        "(limit max_decompressed_bytes)"
    )


def _unzip(data: bytes, limits: ReadingLimits) -> tuple[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise _invalid(errors.EVENT_LOG_BAD_ZIP) from error
    with archive:
        entries = [info for info in archive.infolist() if not _is_clutter(info)]
        if len(entries) != 1:
            raise _invalid(errors.ZIP_MULTIPLE_FILES)
        name = entries[0].filename
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in {"csv", "xes"}:
            raise _invalid(errors.ZIP_WRONG_TYPE)
        if entries[0].file_size > limits.max_decompressed_bytes:  # as declared; the reading checks it again
            raise _too_large(limits)
        try:
            with archive.open(entries[0]) as member:
                return extension, _read_bounded(member, limits)
        except errors.UploadTooLargeError:
            raise
        except Exception as error:  # CRC mismatch, truncated data, encryption, unsupported compression, ...
            raise _invalid(errors.EVENT_LOG_BAD_ZIP) from error


def _is_clutter(info: zipfile.ZipInfo) -> bool:
    """Directories, macOS resource forks (``__MACOSX/``) and dot-files such as ``.DS_Store``, at any depth."""
    name = info.filename.replace("\\", "/")
    return info.is_dir() or name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith(".")


def _looks_like_xml(content: bytes) -> bool:
    head = content[:1024].removeprefix(_BOM).lstrip()
    return head.startswith((b"<?xml", b"<log", b"<!--"))


# CSV -------------------------------------------------------------------------------------------------------------


def sniff_separator(sample: str) -> str:
    """Guess the delimiter of a CSV from its first lines.

    A delimiter qualifies when the header splits into at least two fields; the winner is the one whose rows all
    have the header's field count, then the one with the most such rows, then the widest, then the earliest of
    :data:`SEPARATORS`. Quoted fields are honoured, so a ``;`` inside quotes does not count. Falls back to ``,``
    (the caller then finds fewer than two columns and rejects the file).

    >>> sniff_separator("Case;Activity;Amount\\n1;A;1,5\\n2;B;2,5\\n")
    ';'
    >>> sniff_separator("single column\\n1\\n")
    ','
    """
    best, best_score = ",", None
    for rank, separator in enumerate(SEPARATORS):
        try:
            reader = csv.reader(io.StringIO(sample.lstrip("\ufeff")), delimiter=separator)
            rows = [row for row in itertools.islice(reader, _SNIFF_ROWS) if any(cell.strip() for cell in row)]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        matching = sum(len(row) == len(rows[0]) for row in rows)
        score = (matching == len(rows), matching, len(rows[0]), -rank)
        if best_score is None or score > best_score:
            best, best_score = separator, score
    return best


def _decode(data: bytes) -> tuple[bytes, str, str]:
    """The CSV's bytes (UTF-16 transcoded to UTF-8), its encoding for the parser, and its text.

    UTF-8 first; UTF-16 when it starts with a byte order mark (spreadsheets save "Unicode text" so); Latin-1 when
    the file is not UTF-8 and holds no UTF-8 sequence at all. A file mixing both is refused with the line of its
    first byte that is not UTF-8, instead of being read as Latin-1 ("Müller" would become "MÃ¼ller").
    """
    if data.startswith(_UTF16_BOMS):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise _invalid(
                f"{errors.EVENT_LOG_INVALID}: the file starts as UTF-16 but is not valid UTF-16 (byte {error.start:,})"
            ) from error
        return text.encode("utf-8"), "utf-8", text
    if b"\x00" in data:
        raise _invalid()
    try:
        return data, "utf-8", data.decode("utf-8")
    except UnicodeDecodeError as error:
        sample = data[: 2 * _SAMPLE_SIZE].decode("latin-1")
        if _UTF8_MULTIBYTE.search(data) and not _binary(sample):
            line = data.count(b"\n", 0, error.start) + 1
            raise _invalid(
                f"{errors.EVENT_LOG_INVALID}: the file mixes encodings: it holds UTF-8 text, but byte "
                f"0x{data[error.start]:02x} on line {line:,} is not UTF-8; save the file as UTF-8"
            ) from error
        return data, "latin-1", sample


def _binary(text: str) -> bool:
    """Latin-1 decodes anything, so the text/binary verdict rests on control characters, which text never has."""
    return len(_CONTROL.findall(text)) > len(text) // 100


def _count_columns(data: bytes, separator: str, encoding: str) -> int:
    """Fields of the header line (quotes honoured), read from the bytes: the header may be longer than a sample."""
    end = data.find(b"\n")
    header = (data if end < 0 else data[:end]).decode(encoding, "replace").lstrip("\ufeff")
    try:
        return max((len(row) for row in csv.reader(io.StringIO(header), delimiter=separator)), default=0)
    except csv.Error:
        return header.count(separator) + 1


def _read_csv(data: bytes, separator: str | None, limits: ReadingLimits = ReadingLimits()) -> pd.DataFrame:
    data, encoding, text = _decode(data)
    sample = text[:_SAMPLE_SIZE]
    if len(text) > _SAMPLE_SIZE and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # drop the cut-off last line
    del text
    if _binary(sample):
        raise _invalid()
    if separator == "\\t":
        separator = "\t"
    separator = separator or sniff_separator(sample)
    columns = _count_columns(data, separator, encoding)
    if columns > limits.max_columns:
        raise errors.UploadTooLargeError(
            f"The event log has {columns:,} columns; at most {limits.max_columns:,} are accepted (limit max_columns)"
        )
    frame = None
    # pyarrow parses BPIC 2012 (18 MB) ~5x faster than the C engine but rejects rows with missing trailing fields
    # and whitespace-only lines, which the C engine tolerates; the C engine therefore gets a second chance.
    for engine in ("pyarrow", "c"):
        try:
            frame = pd.read_csv(
                io.BytesIO(data),
                sep=separator,
                dtype=str,
                engine=engine,
                encoding=encoding,
                keep_default_na=False,
                na_values=[""],
            )
            break
        except Exception as error:  # any parser failure, including pyarrow being absent
            logger.debug("read_csv(engine=%r) failed: %s", engine, error)
    if frame is None or frame.shape[1] < 2:
        raise _invalid()
    frame.columns = _unique([str(column).strip() for column in frame.columns])
    for column in frame.columns:
        frame[column] = _clean_text(frame[column])
    frame = frame.dropna(how="all").reset_index(drop=True)  # e.g. spreadsheet exports' trailing ",,,," lines
    if frame.empty:
        raise _invalid()
    return frame


def _unique(names: list[str]) -> list[str]:
    """Header names made unique the way pandas does it (``a``, ``a.1``), since stripping can create duplicates."""
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, count = name, 0
        while candidate in seen:
            count += 1
            candidate = f"{name}.{count}"
        seen.add(candidate)
        result.append(candidate)
    return result


def _clean_text(values: pd.Series) -> pd.Series:
    """Stripped text in the CSV text dtype; empty or missing cells become missing (never the string ``"nan"``)."""
    if values.dtype != _TEXT:
        values = values.astype("string").astype(_TEXT)
    text = values.str.strip()
    return text.mask(text == "")


# XES -------------------------------------------------------------------------------------------------------------


def _check_xml_head(head: bytes) -> None:
    """Reject empty and binary files before starting an XML parser (and, on fallback, importing pm4py)."""
    if not head.removeprefix(_BOM).lstrip().startswith(b"<"):
        raise _invalid()


def _read_xes(path: str) -> pd.DataFrame:
    """Read an XES file with r4pm's Rust parser when it is installed and trusted, otherwise with pm4py's own."""
    frame = _read_xes_r4pm(path)
    if frame is None:
        frame = _read_xes_pm4py(path)
    frame = frame.drop(columns=[column for column in frame.columns if str(column).startswith("@@")])
    if frame.empty:
        raise _invalid()
    columns = {}
    for name in _xes_column_order(frame.columns):
        values = frame[name]
        is_date = isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype)
        columns[name] = to_datetime(values) if is_date else _clean_text(values)
    return pd.DataFrame(columns).reset_index(drop=True)


def _xes_column_order(columns: pd.Index) -> list[str]:
    """Standard columns first, then the other event attributes, then the other trace attributes, sorted."""
    present = set(columns)
    rest = sorted(column for column in columns if column not in _XES_LEADING)
    return (
        [column for column in _XES_LEADING if column in present]
        + [column for column in rest if not column.startswith("case:")]
        + [column for column in rest if column.startswith("case:")]
    )


def _read_xes_r4pm(path: str) -> pd.DataFrame | None:
    """The log as read by ``r4pm.df.import_xes`` (what ``pm4py.read_xes`` itself uses), or ``None`` to fall back.

    Calling r4pm directly skips importing pm4py (1.5-2 s). r4pm is lenient where pm4py is not: a date it cannot
    parse (``2020-01-01``, ``2020-01-01 10:00:00``) silently becomes null, with a line on stderr per value. Those
    lines are captured, and any date failure, parser error or empty result sends the file to pm4py's parser
    instead, whose verdict is final.
    """
    try:
        from r4pm.df import import_xes  # needs polars
    except ImportError:
        return None
    events = None
    with _native_stderr_captured() as messages:
        try:
            events, _ = import_xes(path)
        except BaseException as error:  # a Rust panic arrives as pyo3's PanicException, a BaseException
            if not isinstance(error, Exception) and type(error).__name__ != "PanicException":
                raise
            logger.info("r4pm could not read the XES file (%s); trying pm4py", error)
    _forward_foreign_messages(messages)
    if events is None:
        return None
    if any(message.startswith(_R4PM_DATE_FAILURE) for message in messages):
        logger.info("r4pm could not parse some XES dates; reading the file with pm4py instead")
        return None
    if events.height == 0:
        return None
    import polars as pl

    # Cast in polars, before pandas turns integers with gaps into floats ("5" would become "5.0").
    dates = (pl.Datetime, pl.Date)
    events = events.with_columns(
        pl.col(name).cast(pl.String) for name, kind in events.schema.items() if kind not in dates
    )
    try:
        return events.to_pandas()
    except Exception as error:  # pyarrow missing or an unconvertible column
        logger.info("could not convert r4pm's result (%s); trying pm4py", error)
        return None


@contextlib.contextmanager
def _native_stderr_captured():
    """Collect what native code writes to file descriptor 2 meanwhile (Python's ``sys.stderr`` is bypassed)."""
    messages: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no stderr at all: nothing to capture
            yield messages
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            messages.extend(sink.read().decode("utf-8", "replace").splitlines())


def _forward_foreign_messages(messages: list[str]) -> None:
    """Give back to stderr what other threads wrote while it was captured; r4pm's per-value notes are dropped."""
    foreign = [message for message in messages if not message.startswith(_R4PM_MESSAGES)]
    if foreign:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.write("\n".join(foreign) + "\n")


def _read_xes_pm4py(path: str) -> pd.DataFrame:
    """The log as read by pm4py's XML parser (strict ``lxml`` iterparse when available)."""
    pm4py = _import_pm4py()
    from pm4py.util import constants

    variant = constants.DEFAULT_XES_PARSER
    if variant in {"r4pm", "rustxes"}:  # configurable through PM4PY_DEFAULT_XES_PARSER; r4pm has had its turn
        variant = "iterparse"
    try:
        with _warnings_suppressed():
            frame = pm4py.read_xes(path, variant=variant, return_legacy_log_object=False, show_progress_bar=False)
    except Exception as error:
        raise _invalid() from error
    if not isinstance(frame, pd.DataFrame):
        raise _invalid()
    for column in frame.columns:
        # Integer attributes with gaps arrive as floats; give them back their integer spelling ("5", not "5.0").
        values = frame[column]
        if pd.api.types.is_float_dtype(values.dtype):
            present = values.dropna()
            if ((present == present.round()) & (present.abs() < 2**53)).all():
                frame[column] = values.astype("Int64")
    return frame


def _import_pm4py():
    """Import pm4py once, quietly: its import prints a licence banner and emits warnings."""
    if "pm4py" not in sys.modules:
        with (
            _warnings_suppressed(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            import pm4py  # noqa: F401
    return sys.modules["pm4py"]


@contextlib.contextmanager
def _warnings_suppressed():
    """Silence Python warnings (pm4py's "uses r4pm by default" and deprecation notices) for a block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
