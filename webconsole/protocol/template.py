"""Hanami cluster templates (contract §6): lexer, parser, error bodies and example templates.

The parser reproduces the behaviour of Hanami's flex/bison parser, including where it reports
errors, because the console shows these errors to users and the emulator must answer like the
real backend:

* Locations are bison locations: 1-based line, 1-based column counted in bytes, tabs count 1.
* Lexer errors (``invalid character``, ``integer is out of range``) do not stop the lexer; the
  offending byte is skipped. Only the *first* error of a parse is reported.
* A syntax error is reported at the unexpected token.
* Semantic errors (unknown keys, ``refractory_time must be >= 1``) are raised by bison actions that
  run when a ``key: value NL+`` line is reduced. At that moment the parser already holds the
  *lookahead* token, i.e. the first token after the run of line breaks (or end of input), and Hanami
  reports that token's location, not the location of the bad key. We do the same.
* Hanami prints the broken part only if the line is strictly longer than ``column - 1 + length``;
  otherwise it prints ``UNKNOWN POSITION (maybe a string was not closed)``. So an error on the
  last token of a line, on a line break or at end of input has ``column=None`` here.

Line-break tokens are located on the line that contains the ``\\n`` at the column of the ``\\n``
(the exact bison location of Hanami's LINEBREAK token could not be confirmed; either way the
position is reported as UNKNOWN POSITION).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "Brick",
    "ClusterTemplate",
    "TemplateError",
    "parse_template",
    "template_error_body",
    "ascii_table",
    "EXAMPLE_MNIST_TEMPLATE",
    "EXAMPLE_CSV_TEMPLATE",
]


@dataclass(frozen=True)
class Brick:
    """One brick of a cluster template."""

    position: tuple[int, int, int]
    neurons: int  # number_of_neurons (0 if not given)
    input_name: str | None  # set for input bricks
    output_name: str | None  # set for output bricks
    line: int  # 1-based line of the brick's position line

    @property
    def name(self) -> str:
        """The brick name used by direct IO and CSV column matching ("" for internal bricks)."""
        return self.input_name or self.output_name or ""


@dataclass(frozen=True)
class ClusterTemplate:
    """A parsed template: settings (defaults applied) and bricks in template order."""

    settings: dict[str, int | float | bool]
    bricks: tuple[Brick, ...]

    @property
    def input_bricks(self) -> list[Brick]:
        """Bricks marked with ``input:``."""
        return [b for b in self.bricks if b.input_name is not None]

    @property
    def output_bricks(self) -> list[Brick]:
        """Bricks marked with ``output:``."""
        return [b for b in self.bricks if b.output_name is not None]


class TemplateError(ValueError):
    """A template that Hanami would reject, with Hanami's message and location."""

    def __init__(self, message: str, line: int, column: int | None, broken_part: str) -> None:
        self.message = message
        self.line = line
        self.column = column  # None = Hanami's "UNKNOWN POSITION"
        self.broken_part = broken_part
        where = f"column {column}" if column is not None else "unknown position"
        super().__init__(f"{message} (line {line}, {where})")

    def hanami_text(self) -> str:
        """The error text exactly as Hanami's parser builds it (the cell of the error table)."""
        text = (
            "ERROR while parsing cluster-definition string \n"
            f"parser-message: {self.message} \n"
            f"line-number: {self.line} \n"
        )
        if self.column is not None:
            text += f"position in line: {self.column}\n"
            text += f'broken part in string: "{self.broken_part}"'
        else:
            text += "position in line: UNKNOWN POSITION (maybe a string was not closed)"
        return text


DEFAULT_SETTINGS: dict[str, int | float | bool] = {
    "neuron_cooldown": 1000000000.0,
    "refractory_time": 1,
    "max_connection_distance": 1,
    "enable_reduction": False,
}

# ---------------------------------------------------------------------------------------------
# Lexer
# ---------------------------------------------------------------------------------------------

# Token kinds
VERSION, SETTINGS, BRICKS, TRUE, FALSE, COMMA, ASSIGN = (
    "version1", "settings", "bricks", "true", "false", ",", ":")
NL, INT, FLOAT, IDENT, STRING, END = "linebreak", "number", "float", "identifier", "string", "end"

# Fixed tokens; flex picks the longest match and, on ties, the earliest rule (keywords before id).
_KEYWORDS: list[tuple[str, str]] = [
    ("version:1", VERSION), ("version: 1", VERSION), ("settings", SETTINGS), ("bricks", BRICKS),
    ("true", TRUE), ("false", FALSE), ("True", TRUE), ("False", FALSE), (",", COMMA), (":", ASSIGN),
]
_RE_STRING = re.compile(r'"(\\.|[^"\\])*"', re.S)
_RE_INT = re.compile(r"-?[0-9]+")
_RE_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")
_RE_ID = re.compile(r"[a-zA-Z_0-9]+")
_INT64 = (-(2**63), 2**63 - 1)


@dataclass
class _Token:
    kind: str
    text: str
    line: int
    column: int
    value: int | float | str | None = None


@dataclass
class _State:
    """Shared by lexer and parser: Hanami keeps only the first error."""

    lines: list[str]
    error: TemplateError | None = None

    def report(self, message: str, line: int, column: int, length: int) -> None:
        if self.error is not None:
            return
        text = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        if len(text) > column - 1 + length:
            self.error = TemplateError(message, line, column, _show(text[column - 1:column - 1 + length]))
        else:
            self.error = TemplateError(message, line, None, "")


def _show(latin1: str) -> str:
    """Turn the byte-per-char working text back into readable text."""
    return latin1.encode("latin-1").decode("utf-8", errors="replace")


class _Lexer:
    """Lazy token stream over the template bytes (one Python char per byte, like flex)."""

    def __init__(self, text: str, state: _State) -> None:
        self.text = text
        self.state = state
        self.pos = 0
        self.line = 1
        self.col = 1

    def next(self) -> _Token:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t":
                self._advance(1)
                continue
            if ch == "\n":
                tok = _Token(NL, "\n", self.line, self.col)
                self.pos += 1
                self.line += 1
                self.col = 1
                return tok
            best_len, best_kind = 0, ""
            for literal, kind in _KEYWORDS:
                if text.startswith(literal, self.pos) and len(literal) > best_len:
                    best_len, best_kind = len(literal), kind
            for regex, kind in ((_RE_STRING, STRING), (_RE_INT, INT), (_RE_FLOAT, FLOAT), (_RE_ID, IDENT)):
                m = regex.match(text, self.pos)
                if m and len(m.group()) > best_len:
                    best_len, best_kind = len(m.group()), kind
            if best_len == 0:
                # flex's "." rule: report, skip one byte, keep scanning
                self.state.report("invalid character", self.line, self.col, 1)
                self._advance(1)
                continue
            lexeme = text[self.pos:self.pos + best_len]
            tok = _Token(best_kind, lexeme, self.line, self.col)
            if best_kind == INT:
                tok.value = int(lexeme)
                if not _INT64[0] <= tok.value <= _INT64[1]:
                    self.state.report("integer is out of range", self.line, self.col, best_len)
                    tok.value = max(_INT64[0], min(_INT64[1], tok.value))  # strtol saturates
            elif best_kind == FLOAT:
                tok.value = float(lexeme)
            elif best_kind in (IDENT, STRING):
                tok.value = _show(lexeme)
            self._advance(best_len)
            return tok
        return _Token(END, "", self.line, self.col)

    def _advance(self, n: int) -> None:
        self.pos += n
        self.col += n


# ---------------------------------------------------------------------------------------------
# Parser (recursive descent equivalent of the bison grammar of §6.3)
# ---------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Parsing ends; the error is in the shared state."""


@dataclass
class _Parser:
    lexer: _Lexer
    state: _State
    tok: _Token = field(init=False)

    def __post_init__(self) -> None:
        self.tok = self.lexer.next()

    def _shift(self) -> _Token:
        tok = self.tok
        self.tok = self.lexer.next()
        return tok

    def _syntax_error(self) -> None:
        t = self.tok
        self.state.report("syntax error", t.line, t.column, len(t.text) if t.kind != NL else 1)
        raise _Stop

    def _semantic_error(self, message: str) -> None:
        # bison actions report yyla: the lookahead token after the line breaks
        t = self.tok
        self.state.report(message, t.line, t.column, len(t.text) if t.kind != NL else 1)
        raise _Stop

    def _expect(self, kind: str) -> _Token:
        if self.tok.kind != kind:
            self._syntax_error()
        return self._shift()

    def _linebreaks(self) -> None:
        self._expect(NL)
        while self.tok.kind == NL:
            self._shift()

    def parse(self) -> ClusterTemplate:
        settings = dict(DEFAULT_SETTINGS)
        self._expect(VERSION)
        self._linebreaks()
        if self.tok.kind == SETTINGS:
            self._shift()
            self._expect(ASSIGN)
            self._linebreaks()
            self._setting(settings)  # at least one entry
            while self.tok.kind == IDENT:
                self._setting(settings)
        self._expect(BRICKS)
        self._expect(ASSIGN)
        self._linebreaks()
        bricks = [self._brick()]
        while self.tok.kind == INT:
            bricks.append(self._brick())
        if self.tok.kind != END:
            self._syntax_error()
        return ClusterTemplate(settings=settings, bricks=tuple(bricks))

    def _setting(self, settings: dict[str, int | float | bool]) -> None:
        key = self._expect(IDENT)
        self._expect(ASSIGN)
        if self.tok.kind not in (INT, FLOAT, TRUE, FALSE):
            self._syntax_error()
        value = self._shift()
        self._linebreaks()
        name = str(key.value)
        if name == "neuron_cooldown" and value.kind in (INT, FLOAT):
            settings[name] = float(value.value)  # type: ignore[arg-type]
        elif name == "refractory_time" and value.kind == INT:
            if int(value.value) < 1:  # type: ignore[arg-type]
                self._semantic_error("refractory_time must be >= 1")
            settings[name] = int(value.value)  # type: ignore[arg-type]
        elif name == "max_connection_distance" and value.kind == INT:
            settings[name] = int(value.value)  # type: ignore[arg-type]
        elif name == "enable_reduction" and value.kind in (TRUE, FALSE):
            settings[name] = value.kind == TRUE
        else:
            self._semantic_error(f"unkown settings-field '{name}'")

    def _brick(self) -> Brick:
        first = self._expect(INT)
        self._expect(COMMA)
        y = self._expect(INT)
        self._expect(COMMA)
        z = self._expect(INT)
        self._linebreaks()
        values: dict[str, str | int] = {}
        self._field(values, first_field=True)
        while self.tok.kind == IDENT:
            self._field(values, first_field=False)
        return Brick(
            position=(int(first.value), int(y.value), int(z.value)),  # type: ignore[arg-type]
            neurons=int(values.get("number_of_neurons", 0)),
            input_name=str(values["input"]) if values.get("kind") == "input" else None,
            output_name=str(values["output"]) if values.get("kind") == "output" else None,
            line=first.line,
        )

    def _field(self, values: dict[str, str | int], first_field: bool) -> None:
        key = self._expect(IDENT)
        self._expect(ASSIGN)
        if self.tok.kind not in (IDENT, INT):
            self._syntax_error()
        value = self._shift()
        if first_field or self.tok.kind != END:
            # only a brick's 2nd or later field may end directly at end of input
            self._linebreaks()
        name = str(key.value)
        if name in ("input", "output") and value.kind == IDENT:
            values[name] = str(value.value)
            values["kind"] = name  # a brick with both input and output: last wins
        elif name == "number_of_neurons" and value.kind == INT:
            values[name] = int(value.value)  # type: ignore[arg-type]
        else:
            self._semantic_error(f"unkown brick-field '{name}'")


def parse_template(text: str) -> ClusterTemplate:
    """Parse a cluster template with exactly Hanami's rules (§6); raise TemplateError on failure."""
    work = text.encode("utf-8", errors="surrogateescape").decode("latin-1")
    state = _State(lines=work.split("\n"))
    parser = _Parser(_Lexer(work, state), state)
    try:
        result = parser.parse()
    except _Stop:
        result = None
    if state.error is not None:
        raise state.error
    assert result is not None
    return result


# ---------------------------------------------------------------------------------------------
# Error tables and bodies
# ---------------------------------------------------------------------------------------------


def ascii_table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """Render Hanami's ASCII-art table (§1.7); multi-line cells span several text lines.

    >>> print(ascii_table([["Error-Message Nr. 0", "oops"]]))
    +---------------------+------+
    | Error-Message Nr. 0 | oops |
    +---------------------+------+
    """
    all_rows = ([list(header)] if header is not None else []) + [list(r) for r in rows]
    ncols = max((len(r) for r in all_rows), default=0)
    cells = [[str(c).split("\n") for c in r] + [[""]] * (ncols - len(r)) for r in all_rows]
    widths = [max((len(line) for r in cells for line in r[i]), default=0) for i in range(ncols)]
    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [border]
    for index, row in enumerate(cells):
        height = max(len(c) for c in row)
        for k in range(height):
            parts = [(c[k] if k < len(c) else "").ljust(w) for c, w in zip(row, widths)]
            out.append("| " + " | ".join(parts) + " |")
        if header is not None and index == 0:
            out.append(border.replace("-", "="))
    out.append(border)
    return "\n".join(out)


def template_error_body(err: TemplateError) -> str:
    """The complete 400 body of ``POST v1/cluster`` for an invalid template (§4.15 step 2)."""
    return "Uploaded template is not a valid cluster-template: \n" + ascii_table(
        [["Error-Message Nr. 0", err.hanami_text()]]
    )


# ---------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------

EXAMPLE_MNIST_TEMPLATE = """version: 1
settings:
   neuron_cooldown: 10000000.0
   refractory_time: 1
   max_connection_distance: 1
   enable_reduction: false
bricks:
    1,1,1
        input: test_input
        number_of_neurons: 784
    2,1,1
        number_of_neurons: 400
    3,1,1
        output: test_output
        number_of_neurons: 10
"""

# For the demo CSV (demo-sine.csv, columns test_input,test_output). A CSV task feeds a sliding
# window of I input values and expects O output values (§4.23). We use I = 1 and O = 1, as the
# team's interface promises: then cycle c feeds row c's test_input and expects row c's
# test_output, so the network learns the function test_output = f(test_input) that the demo CSV
# tabulates (L - 1 cycles per pass). Any CSV with at least 2 rows and these column names works.
EXAMPLE_CSV_TEMPLATE = """version: 1
settings:
   neuron_cooldown: 10000000.0
   refractory_time: 1
   max_connection_distance: 1
   enable_reduction: false
bricks:
    1,1,1
        input: test_input
        number_of_neurons: 1
    2,1,1
        number_of_neurons: 32
    3,1,1
        output: test_output
        number_of_neurons: 1
"""
