"""Cluster template parser: the §6 rules, error messages and locations."""

from __future__ import annotations

import pytest

from webconsole.protocol.template import (
    EXAMPLE_CSV_TEMPLATE,
    EXAMPLE_MNIST_TEMPLATE,
    TemplateError,
    ascii_table,
    parse_template,
    template_error_body,
)

BRICKS = "bricks:\n    1,1,1\n        input: a\n        number_of_neurons: 3\n    2,1,1\n        output: b\n        number_of_neurons: 2\n"


def test_example_mnist_template() -> None:
    t = parse_template(EXAMPLE_MNIST_TEMPLATE)
    assert t.settings == {"neuron_cooldown": 10000000.0, "refractory_time": 1,
                          "max_connection_distance": 1, "enable_reduction": False}
    assert [b.position for b in t.bricks] == [(1, 1, 1), (2, 1, 1), (3, 1, 1)]
    assert [b.neurons for b in t.bricks] == [784, 400, 10]
    assert [b.name for b in t.bricks] == ["test_input", "", "test_output"]
    assert [b.line for b in t.bricks] == [8, 11, 13]
    assert t.input_bricks[0].input_name == "test_input"
    assert t.output_bricks[0].output_name == "test_output"


def test_example_csv_template() -> None:
    t = parse_template(EXAMPLE_CSV_TEMPLATE)
    assert (t.input_bricks[0].name, t.input_bricks[0].neurons) == ("test_input", 1)
    assert (t.output_bricks[0].name, t.output_bricks[0].neurons) == ("test_output", 1)


VALID = {
    "no settings": ("version: 1\n" + BRICKS, 2),
    "version without space": ("version:1\n" + BRICKS, 2),
    "tabs and odd indentation": ("version: 1\n\tbricks\t:\n1,1,1\n\t\t input:a\nnumber_of_neurons:3\n", 1),
    "blank lines between": ("version: 1\n\n\nbricks:\n\n1,1,1\n\ninput: a\n\n\n", 1),
    "trailing newlines": ("version: 1\n" + BRICKS + "\n\n\n", 2),
    "last field without newline (2nd field)": ("version: 1\nbricks:\n1,1,1\ninput: a\nnumber_of_neurons: 3", 1),
    "single-field final brick with newline": ("version: 1\nbricks:\n1,1,1\ninput: a\n2,1,1\noutput: b\n", 2),
    "settings True/False, int cooldown": (
        "version: 1\nsettings:\nenable_reduction: True\nneuron_cooldown: 5\n" + BRICKS, 2),
}


@pytest.mark.parametrize("text,bricks", VALID.values(), ids=VALID.keys())
def test_valid_templates(text: str, bricks: int) -> None:
    assert len(parse_template(text).bricks) == bricks


def test_settings_values_and_defaults() -> None:
    t = parse_template("version: 1\nsettings:\nenable_reduction: True\nneuron_cooldown: 5\n"
                       "refractory_time: 3\nrefractory_time: 4\n" + BRICKS)
    assert t.settings == {"neuron_cooldown": 5.0, "refractory_time": 4,
                          "max_connection_distance": 1, "enable_reduction": True}
    assert parse_template("version: 1\n" + BRICKS).settings["neuron_cooldown"] == 1000000000.0


# (text, message, line, column or None, broken part)
ERRORS = {
    "missing version": ("bricks:\n1,1,1\ninput: a\n", "syntax error", 1, 1, "bricks"),
    "version with two spaces": ("version:  1\nbricks:\n1,1,1\ninput: a\n", "syntax error", 1, 1, "version"),
    "leading blank line": ("\nversion: 1\nbricks:\n1,1,1\ninput: a\n", "syntax error", 1, None, ""),
    "CRLF": ("version: 1\r\nbricks:\r\n1,1,1\r\ninput: a\r\n", "invalid character", 1, None, ""),
    "empty settings block": ("version: 1\nsettings:\n" + BRICKS, "syntax error", 3, 1, "bricks"),
    "unknown settings field": (
        "version: 1\nsettings:\n   speed: 3\n   refractory_time: 1\n" + BRICKS,
        "unkown settings-field 'speed'", 4, 4, "refractory_time"),
    "unknown settings field before bricks": (
        "version: 1\nsettings:\n   speed: 3\n" + BRICKS,
        "unkown settings-field 'speed'", 4, 1, "bricks"),
    "refractory_time 0": (
        "version: 1\nsettings:\n   refractory_time: 0\n   max_connection_distance: 1\n" + BRICKS,
        "refractory_time must be >= 1", 4, 4, "max_connection_distance"),
    "decimal max_connection_distance": (
        "version: 1\nsettings:\n   max_connection_distance: 1.5\n" + BRICKS,
        "unkown settings-field 'max_connection_distance'", 4, 1, "bricks"),
    "bool refractory_time": (
        "version: 1\nsettings:\n   refractory_time: true\n" + BRICKS,
        "unkown settings-field 'refractory_time'", 4, 1, "bricks"),
    "setting without value": ("version: 1\nsettings:\n   refractory_time:\n" + BRICKS,
                              "syntax error", 3, None, ""),
    "unknown brick field": (
        "version: 1\nbricks:\n  1,1,1\n    colour: red\n    input: a\n",
        "unkown brick-field 'colour'", 5, 5, "input"),
    "unknown brick field last, at end of input": (
        "version: 1\nbricks:\n  1,1,1\n    input: a\n    colour: red",
        "unkown brick-field 'colour'", 5, None, ""),
    "number_of_neurons with identifier": (
        "version: 1\nbricks:\n  1,1,1\n    number_of_neurons: many\n  2,1,1\n    input: a\n",
        "unkown brick-field 'number_of_neurons'", 5, 3, "2"),
    "input with number": (
        "version: 1\nbricks:\n  1,1,1\n    input: 5\n    number_of_neurons: 3\n",
        "unkown brick-field 'input'", 5, 5, "number_of_neurons"),
    "decimal number_of_neurons": (
        "version: 1\nbricks:\n  1,1,1\n    number_of_neurons: 2.5 \n",
        "syntax error", 4, 24, "2.5"),
    "decimal number_of_neurons at line end (Hanami hides the position)": (
        "version: 1\nbricks:\n  1,1,1\n    number_of_neurons: 2.5\n",
        "syntax error", 4, None, ""),
    "brick without fields": (
        "version: 1\nbricks:\n  1,1,1\n  2,1,1\n    input: a\n", "syntax error", 4, 3, "2"),
    "final brick without fields": (
        "version: 1\nbricks:\n  1,1,1\n    input: a\n  2,1,1\n", "syntax error", 6, None, ""),
    "single-field last brick without trailing newline": (
        "version: 1\nbricks:\n  1,1,1\n    input: a", "syntax error", 4, None, ""),
    "no bricks at all": ("version: 1\nbricks:\n", "syntax error", 3, None, ""),
    "quoted string": (
        'version: 1\nbricks:\n  1,1,1\n    input: "a b" \n    number_of_neurons: 1\n',
        "syntax error", 4, 12, '"a b"'),
    "bad character": (
        "version: 1\nbricks:\n  1,1,1\n    input: a-b\n    number_of_neurons: 1\n",
        "invalid character", 4, 13, "-"),
    "non-ASCII character": (
        "version: 1\nbricks:\n  1,1,1\n    input: ä\n    number_of_neurons: 1\n",
        "invalid character", 4, 12, "\ufffd"),
    "two positions only": ("version: 1\nbricks:\n  1,1\n    input: a\n", "syntax error", 3, None, ""),
    "integer out of range": (
        "version: 1\nbricks:\n  1,1,1\n    number_of_neurons: 99999999999999999999 \n    input: a\n",
        "integer is out of range", 4, 24, "99999999999999999999"),
}


@pytest.mark.parametrize("text,message,line,column,broken", ERRORS.values(), ids=ERRORS.keys())
def test_template_errors(text: str, message: str, line: int, column: int | None, broken: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text)
    err = info.value
    assert (err.message, err.line, err.column, err.broken_part) == (message, line, column, broken)


def test_first_error_wins_lexer_before_parser() -> None:
    # the invalid character is met while the lexer scans; the later syntax error is not reported
    with pytest.raises(TemplateError) as info:
        parse_template("version: 1\nbricks:\n  1,1,1 $ \n  2,1,1\n")
    assert (info.value.message, info.value.line, info.value.column) == ("invalid character", 3, 9)


def test_error_body_with_position() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("version: 1\nbricks:\n  1,1,1\n    colour: red\n    input: a\n")
    body = template_error_body(info.value)
    assert body.startswith("Uploaded template is not a valid cluster-template: \n+")
    for part in ("ERROR while parsing cluster-definition string", "parser-message: unkown brick-field 'colour'",
                 "line-number: 5", "position in line: 5", 'broken part in string: "input"'):
        assert part in body
    assert body.splitlines()[-1].startswith("+--")


def test_error_body_unknown_position() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("version: 1\r\n")
    body = template_error_body(info.value)
    assert "parser-message: invalid character" in body
    assert "position in line: UNKNOWN POSITION (maybe a string was not closed)" in body
    assert "broken part" not in body


def test_ascii_table_layout() -> None:
    assert ascii_table([["Error-Message Nr. 0", "no matching endpoint found for path '/foo/bar'"]]) == (
        "+---------------------+------------------------------------------------+\n"
        "| Error-Message Nr. 0 | no matching endpoint found for path '/foo/bar' |\n"
        "+---------------------+------------------------------------------------+"
    )
    table = ascii_table([["a", "x\nlonger"]], header=["k", "v"])
    assert table.splitlines() == [
        "+---+--------+", "| k | v      |", "+===+========+", "| a | x      |", "|   | longer |", "+---+--------+"]
