"""CSV: strict console validation and Hanami's lenient conversion (§4.30)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from webconsole.protocol.csvdata import CsvInfo, parse_csv_like_hanami, validate_csv
from webconsole.protocol.idx import DataFormatError


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    return path


VALID = {
    "plain": (b"a,b\n1,2\n3,4\n", ["a", "b"], 2),
    "no final newline": (b"a,b\n1,2\n3,4", ["a", "b"], 2),
    "trailing empty lines": (b"a,b\n1,2\n\n\n", ["a", "b"], 1),
    "all value kinds": (b"x,y,z\n-3,0.25,null\nNull,NULL,true\nTrue,TRUE,false\nFalse,FALSE,-0.5\n",
                        ["x", "y", "z"], 4),
    "utf-8 names": ("temp\u00e9rature,t\n1,2\n".encode(), ["temp\u00e9rature", "t"], 1),
}


@pytest.mark.parametrize("data,columns,lines", VALID.values(), ids=VALID.keys())
def test_valid_csv(tmp_path: Path, data: bytes, columns: list[str], lines: int) -> None:
    info = validate_csv(write(tmp_path, data))
    assert (info.columns, info.lines) == (columns, lines)


def test_unusable_column_names_are_reported(tmp_path: Path) -> None:
    info = validate_csv(write(tmp_path, b"test_input,my output\n1,2\n"))
    assert info == CsvInfo(columns=["test_input", "my output"], lines=1, unusable_columns=["my output"])


# data, line, column (field), text in message
INVALID = {
    "CRLF": (b"a,b\r\n1,2\r\n", 1, None, "Windows line endings"),
    "CR in a later line": (b"a,b\n1,2\n3,4\r\n", 3, None, "Windows line endings"),
    "not UTF-8": (b"a,b\n1,2\n\xff,3\n", 3, None, "not UTF-8"),
    "one column": (b"a\n1\n2\n", 1, None, "only one column"),
    "empty column name": (b"a,,c\n1,2,3\n", 1, None, "column 2 has no name"),
    "duplicate column": (b"a,b,a\n1,2,3\n", 1, "a", "appears twice"),
    "column name too long": (b"a," + b"n" * 256 + b"\n1,2\n", 1, "n" * 256, "longer than 255 bytes"),
    "byte order mark": ("\ufeffa,b\n1,2\n".encode(), 1, None, "byte-order mark"),
    "too few values": (b"a,b,c\n1,2,3\n4,5\n", 3, None, "has 2 values but the header has 3 columns"),
    "too many values": (b"a,b\n1,2,3\n", 2, None, "has 3 values but the header has 2"),
    "line without comma": (b"a,b\n1,2\n7\n", 3, None, "has 1 values"),
    "text cell": (b"a,b\n1,2\n3,abc\n", 3, "b", "'abc' is not a number"),
    "empty cell": (b"a,b\n1,\n", 2, "b", "is empty"),
    "exponent": (b"a,b\n1e5,2\n", 2, "a", "exponent"),
    "leading plus": (b"a,b\n+1,2\n", 2, "a", "Hanami does not understand"),
    "leading dot": (b"a,b\n.5,2\n", 2, "a", "Hanami does not understand"),
    "spaces": (b"a,b\n1, 2\n", 2, "b", "spaces"),
    "quoted": (b'a,b\n"1",2\n', 2, "a", "quoted"),
    "decimal comma impossible to tell, uppercase bool mix": (b"a,b\ntRUE,2\n", 2, "a", "not a number"),
    "empty line in the middle": (b"a,b\n1,2\n\n3,4\n", 3, None, "line 3 is empty"),
    "header only": (b"a,b\n", None, None, "no data lines"),
    "empty file": (b"", None, None, "the file is empty"),
}


@pytest.mark.parametrize("data,line,column,text", INVALID.values(), ids=INVALID.keys())
def test_invalid_csv(tmp_path: Path, data: bytes, line: int | None, column: str | None, text: str) -> None:
    with pytest.raises(DataFormatError) as info:
        validate_csv(write(tmp_path, data))
    err = info.value
    assert (err.line, err.field) == (line, column)
    assert text in err.message
    assert err.message.startswith("data.csv: ")
    if line is not None and line > 1:
        assert f"line {line}" in err.message
    if column is not None and line != 1:
        assert f"column '{column}'" in err.message


def test_validation_reads_line_by_line(tmp_path: Path) -> None:
    # a long file validates without trouble and the error points at the right line far down
    body = b"".join(b"%d,%d.5\n" % (i, i) for i in range(50000))
    path = write(tmp_path, b"a,b\n" + body + b"x,1\n")
    with pytest.raises(DataFormatError) as info:
        validate_csv(path)
    assert info.value.line == 50002 and info.value.field == "a"


HANAMI = {
    "numbers": (b"a,b\n1,2.5\n-3,-0.25\n", ["a", "b"], [[1, 2.5], [-3, -0.25]]),
    "null repeats previous, 0 in first row": (b"a,b\nnull,1\n5,null\nNULL,Null\n", ["a", "b"],
                                               [[0, 1], [5, 1], [5, 1]]),
    "bools": (b"a,b\ntrue,FALSE\nTrue,false\nTRUE,False\n", ["a", "b"], [[1, 0], [1, 0], [1, 0]]),
    "unknown -> 0": (b"a,b\n1e5,abc\n+1,.5\n 1,\n", ["a", "b"], [[0, 0], [0, 0], [0, 0]]),
    "lines without comma skipped": (b"title\n\na,b\n1,2\n7\n3,4\n", ["a", "b"], [[1, 2], [3, 4]]),
    "CRLF keeps CR in last cell": (b"a,b\r\n1,2\r\n3,4\r\n", ["a", "b\r"], [[1, 0], [3, 0]]),
    "short rows padded, long rows cut": (b"a,b,c\n1,2\n1,2,3,4\n", ["a", "b", "c"], [[1, 2, 0], [1, 2, 3]]),
}


@pytest.mark.parametrize("data,columns,values", HANAMI.values(), ids=HANAMI.keys())
def test_parse_like_hanami(data: bytes, columns: list[str], values: list[list[float]]) -> None:
    cols, arr = parse_csv_like_hanami(data)
    assert cols == columns
    assert arr.dtype == np.float32 and arr.shape == (len(values), len(columns))
    np.testing.assert_allclose(arr, np.array(values, dtype=np.float32))


def test_parse_like_hanami_without_header() -> None:
    cols, arr = parse_csv_like_hanami(b"1\n2\n")
    assert cols == [] and arr.shape == (0, 0)
