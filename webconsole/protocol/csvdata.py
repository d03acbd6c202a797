"""CSV datasets: strict validation before upload, and Hanami's lenient conversion (§4.30).

Hanami never rejects a CSV file: it silently turns what it does not understand into 0, skips lines
without a comma and keeps a Windows ``\\r`` inside the last column name, so the column no longer
matches a brick name. The console therefore checks an upload *strictly* first (validate_csv) and
explains every problem with the line number and the column name. The emulator converts files
exactly like Hanami (parse_csv_like_hanami), so demos behave like the real backend.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from webconsole.protocol.idx import DataFormatError

__all__ = ["CsvInfo", "validate_csv", "parse_csv_like_hanami", "hanami_cell_value", "MAX_NAME_BYTES"]

MAX_NAME_BYTES = 255  # Hanami's limit for a column name
MAX_LINE_BYTES = 1 << 20  # the strict check refuses longer lines, which keeps its memory bounded

_INT = re.compile(r"-?[0-9]+")
_DEC = re.compile(r"-?[0-9]+\.[0-9]+")
_NULL = {"null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_BRICK_NAME = re.compile(r"[a-zA-Z_0-9]+")  # what a template identifier (brick name) can be


@dataclass(frozen=True)
class CsvInfo:
    """Result of a successful strict check."""

    columns: list[str]
    lines: int  # data rows (without the header), what Hanami reports as ``lines``
    # columns that can never be used: a brick name in a template can only contain a-z A-Z 0-9 _
    unusable_columns: list[str] = field(default_factory=list)


def _is_hanami_number(cell: str) -> bool:
    return bool(_INT.fullmatch(cell) or _DEC.fullmatch(cell)) or cell in _NULL or cell in _TRUE or cell in _FALSE


def _cell_problem(cell: str) -> str:
    """Explain why a cell is not a Hanami number, for a non-programmer."""
    if cell == "":
        return "is empty (write a number, or null to repeat the value of the line above)"
    if cell != cell.strip():
        return f"'{cell}' has spaces around the value; Hanami reads that as 0"
    if re.fullmatch(r"[-+]?[0-9.]+[eE][-+]?[0-9]+", cell):
        return f"'{cell}' uses an exponent, which Hanami does not understand (write it out, e.g. 0.00012)"
    if cell.startswith("+") or cell.startswith(".") or cell.startswith("-.") or cell.endswith("."):
        return f"'{cell}' is written in a way Hanami does not understand (write e.g. 0.5 or -3, no '+')"
    if cell.startswith('"'):
        return f"{cell} is quoted; Hanami does not support quotes"
    return f"'{cell}' is not a number (allowed: numbers like -3 or 0.25, and null, true, false)"


# The first bytes of common binary files (PNG, JPEG, GIF, PDF, ZIP/XLSX, gzip, IDX as in MNIST).
BINARY_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"\x00\x00\x08")


def validate_csv(path: str | os.PathLike[str]) -> CsvInfo:
    """Check a CSV file strictly before it is uploaded to Hanami; read line by line.

    Rules: UTF-8 text; LF line endings (a CR is reported as Windows line endings); a header with at
    least 2 non-empty, unique column names of at most 255 bytes; every line has the header's number
    of values; every value is a number as Hanami reads it (``-3``, ``0.25``) or null/true/false in
    lower, capitalised or upper case; at least one data line. Empty lines are only allowed at the end.
    Raises DataFormatError (message names the file, the line number and the column).
    """
    p = Path(path)
    name = p.name
    columns: list[str] = []
    lines = 0
    pending_empty: int | None = None
    with p.open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise DataFormatError(f"{name}: line {number} is longer than {MAX_LINE_BYTES} bytes; "
                                      "this is not a usable CSV file.", line=number)
            body = raw[:-1] if raw.endswith(b"\n") else raw
            if number == 1 and (b"\x00" in raw or raw.startswith(BINARY_SIGNATURES)):
                raise DataFormatError(
                    f"{name} is not a CSV file: it holds binary data (an image, an archive or a program file?). "
                    "Choose a text file with comma-separated values: a header line with the column names, "
                    "then one line of numbers per sample.", line=1)
            if b"\r" in body:
                raise DataFormatError(
                    f"{name}: line {number} contains a carriage return (Windows line endings). Hanami only "
                    "understands Unix (LF) line endings; save the file with LF line endings.", line=number)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    f"{name}: line {number} is not UTF-8 text (unreadable byte at position {exc.start + 1} of "
                    "the line); save the file as UTF-8.", line=number) from None
            if text == "":
                pending_empty = pending_empty or number
                continue
            if pending_empty is not None:
                raise DataFormatError(f"{name}: line {pending_empty} is empty; remove empty lines.",
                                      line=pending_empty)
            if number == 1:
                columns = _check_header(name, text)
                continue
            cells = text.split(",")
            if len(cells) != len(columns):
                raise DataFormatError(
                    f"{name}: line {number} has {len(cells)} values but the header has {len(columns)} "
                    "columns; every line needs one value per column.", line=number)
            for column, cell in zip(columns, cells):
                if not _is_hanami_number(cell):
                    raise DataFormatError(f"{name}: line {number}, column '{column}': {_cell_problem(cell)}.",
                                          line=number, field=column)
            lines += 1
    if not columns:
        raise DataFormatError(f"{name}: the file is empty; a CSV file needs a header line and data lines.")
    if lines == 0:
        raise DataFormatError(f"{name}: the file has a header but no data lines.")
    unusable = [c for c in columns if not _BRICK_NAME.fullmatch(c)]
    return CsvInfo(columns=columns, lines=lines, unusable_columns=unusable)


def _check_header(name: str, text: str) -> list[str]:
    if text.startswith("\ufeff"):
        raise DataFormatError(
            f"{name}: the file starts with an invisible byte-order mark (BOM), which would become part of "
            "the first column name; save the file as UTF-8 without BOM.", line=1)
    cells = text.split(",")
    if len(cells) < 2:
        raise DataFormatError(
            f"{name}: line 1 (the header) has only one column; Hanami needs at least 2 columns "
            "separated by commas.", line=1)
    seen: set[str] = set()
    for index, cell in enumerate(cells, start=1):
        if cell == "":
            raise DataFormatError(f"{name}: line 1 (the header): column {index} has no name.", line=1)
        if len(cell.encode("utf-8")) > MAX_NAME_BYTES:
            raise DataFormatError(
                f"{name}: line 1 (the header): the name of column {index} is longer than {MAX_NAME_BYTES} bytes.",
                line=1, field=cell)
        if cell in seen:
            raise DataFormatError(f"{name}: line 1 (the header): the column name '{cell}' appears twice.",
                                  line=1, field=cell)
        seen.add(cell)
    return cells


def hanami_cell_value(cell: str, previous: float) -> float:
    """Hanami's conversion of one CSV cell (§4.30); ``previous`` is used for null."""
    if _INT.fullmatch(cell):
        return float(int(cell))
    if _DEC.fullmatch(cell):
        return float(cell)
    if cell in _NULL:
        return previous
    if cell in _TRUE:
        return 1.0
    return 0.0  # false and anything Hanami does not understand


def parse_csv_like_hanami(data: bytes) -> tuple[list[str], np.ndarray]:
    """Convert a CSV upload exactly like Hanami's finalize step (§4.30).

    Returns (column names, float32 array of shape (lines, columns)). Split on LF only; lines
    without a comma are skipped; the first remaining line is the header (no trimming, a CR stays in
    the last name); ``null`` repeats the previous row's value of the column (0 in the first row);
    true -> 1, false -> 0; ``-?[0-9]+`` and ``-?[0-9]+\\.[0-9]+`` are numbers; anything else is 0.
    Hanami does not check the number of values per row: here missing values count as 0 and extra
    values are ignored (the real backend reads undefined memory in these cases).
    """
    columns: list[str] | None = None
    rows: list[list[float]] = []
    previous: list[float] = []
    for raw in data.split(b"\n"):
        if b"," not in raw:
            continue
        cells = raw.decode("utf-8", errors="replace").split(",")
        if columns is None:
            columns = cells
            previous = [0.0] * len(columns)
            continue
        row = []
        for i in range(len(columns)):
            value = hanami_cell_value(cells[i], previous[i]) if i < len(cells) else 0.0
            row.append(value)
        previous = row
        rows.append(row)
    if columns is None:
        return [], np.zeros((0, 0), dtype=np.float32)
    return columns, np.array(rows, dtype=np.float32).reshape(len(rows), len(columns))
