"""The CSV check's messages word for word, and the limits at their exact boundaries.

A person reads these messages to fix a file: each is compared whole, not by a fragment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from webconsole.protocol.csvdata import MAX_LINE_BYTES, MAX_NAME_BYTES, parse_csv_like_hanami, validate_csv
from webconsole.protocol.idx import DataFormatError

CELL = {
    "": "is empty (write a number, or null to repeat the value of the line above)",
    " 1": "' 1' has spaces around the value; Hanami reads that as 0",
    "1e5": "'1e5' uses an exponent, which Hanami does not understand (write it out, e.g. 0.00012)",
    "1E5": "'1E5' uses an exponent, which Hanami does not understand (write it out, e.g. 0.00012)",
    "-2.5E-3": "'-2.5E-3' uses an exponent, which Hanami does not understand (write it out, e.g. 0.00012)",
    "+1": "'+1' is written in a way Hanami does not understand (write e.g. 0.5 or -3, no '+')",
    ".5": "'.5' is written in a way Hanami does not understand (write e.g. 0.5 or -3, no '+')",
    "-.5": "'-.5' is written in a way Hanami does not understand (write e.g. 0.5 or -3, no '+')",
    "5.": "'5.' is written in a way Hanami does not understand (write e.g. 0.5 or -3, no '+')",
    '"1"': '"1" is quoted; Hanami does not support quotes',
    "abc": "'abc' is not a number (allowed: numbers like -3 or 0.25, and null, true, false)",
}


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    return path


def refusal(tmp_path: Path, data: bytes) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        validate_csv(write(tmp_path, data))
    return info.value


@pytest.mark.parametrize("cell", CELL, ids=[repr(cell) for cell in CELL])
def test_each_bad_cell_is_explained(tmp_path: Path, cell: str) -> None:
    error = refusal(tmp_path, b"a,b\n1,2\n3," + cell.encode() + b"\n")
    assert error.message == f"data.csv: line 3, column 'b': {CELL[cell]}."
    assert (error.line, error.field) == (3, "b")


MESSAGES = {
    "CRLF": (b"a,b\n1,2\r\n", 2, "data.csv: line 2 contains a carriage return (Windows line endings). Hanami only "
             "understands Unix (LF) line endings; save the file with LF line endings."),
    "not UTF-8": (b"a,b\n1,\xff2\n", 2, "data.csv: line 2 is not UTF-8 text (unreadable byte at position 3 of "
                  "the line); save the file as UTF-8."),
    "BOM": ("\ufeffa,b\n1,2\n".encode(), 1, "data.csv: the file starts with an invisible byte-order mark (BOM), "
            "which would become part of the first column name; save the file as UTF-8 without BOM."),
    "one column": (b"a\n1\n", 1, "data.csv: line 1 (the header) has only one column; Hanami needs at least 2 "
                   "columns separated by commas."),
    "no name": (b"a,,c\n1,2,3\n", 1, "data.csv: line 1 (the header): column 2 has no name."),
    "twice": (b"a,b,a\n1,2,3\n", 1, "data.csv: line 1 (the header): the column name 'a' appears twice."),
    "name too long": (b"a," + b"n" * (MAX_NAME_BYTES + 1) + b"\n1,2\n", 1,
                      f"data.csv: line 1 (the header): the name of column 2 is longer than {MAX_NAME_BYTES} bytes."),
    "values": (b"a,b,c\n1,2\n", 2, "data.csv: line 2 has 2 values but the header has 3 columns; every line needs "
               "one value per column."),
    "empty line": (b"a,b\n1,2\n\n3,4\n", 3, "data.csv: line 3 is empty; remove empty lines."),
    "header only": (b"a,b\n", None, "data.csv: the file has a header but no data lines."),
    "empty": (b"", None, "data.csv: the file is empty; a CSV file needs a header line and data lines."),
    "empty lines only": (b"\n\n", None, "data.csv: the file is empty; a CSV file needs a header line and data lines."),
    "empty first line": (b"\na,b\n1,2\n", 1, "data.csv: line 1 is empty; remove empty lines."),
}


@pytest.mark.parametrize("data, line, message", MESSAGES.values(), ids=MESSAGES.keys())
def test_each_file_problem_is_explained(tmp_path: Path, data: bytes, line: int | None, message: str) -> None:
    error = refusal(tmp_path, data)
    assert (error.message, error.line) == (message, line)


def test_a_column_name_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    name = "n" * MAX_NAME_BYTES
    assert validate_csv(write(tmp_path, f"a,{name}\n1,2\n".encode())).columns == ["a", name]


def number_line(length: int) -> bytes:
    """A valid data line of exactly ``length`` bytes (without its newline): ``1,999…``."""
    return b"1," + b"9" * (length - 2)


def test_lines_up_to_the_limit_pass_and_longer_ones_are_refused(tmp_path: Path) -> None:
    for ending in (b"\n", b""):
        exact = validate_csv(write(tmp_path, b"a,b\n" + number_line(MAX_LINE_BYTES) + ending))
        assert exact.lines == 1, ending
    long_message = (f"data.csv: line 2 is longer than {MAX_LINE_BYTES} bytes; this is not a usable CSV file.")
    for length, ending in ((MAX_LINE_BYTES + 1, b"\n"), (MAX_LINE_BYTES + 1, b""), (3 * MAX_LINE_BYTES, b"\n")):
        error = refusal(tmp_path, b"a,b\n" + number_line(length) + ending + b"1,2\n")
        assert (error.message, error.line) == (long_message, 2), (length, ending)


def test_hanami_turns_unreadable_bytes_into_text_not_an_error() -> None:
    columns, values = parse_csv_like_hanami(b"a,b\xff\n1,2\n")
    assert columns == ["a", "b\ufffd"] and values.tolist() == [[1.0, 2.0]]


def test_a_file_without_any_comma_is_an_empty_float32_table() -> None:
    columns, values = parse_csv_like_hanami(b"no commas\nat all\n")
    assert columns == [] and values.shape == (0, 0) and values.dtype == np.float32
