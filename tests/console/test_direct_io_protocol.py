"""What a direct-IO bridge checks before it opens: the bricks of the hello against the cluster's
template, and the refusals (message and close code) the page shows. Plain functions on a real
memory store; the websocket tests (test_direct_io.py) show the same refusals end to end."""

from __future__ import annotations

import pytest

from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE, parse_template
from webconsole.sessions.memory import MemoryStore
from webconsole.web.clusters.memory import remember_template
from webconsole.web.direct_io.protocol import (
    CLOSE_BAD_REQUEST,
    CLOSE_REFUSED,
    Layout,
    Refused,
    choose_layout,
    cluster_template,
    layout_problem,
)

HEAD = "version: 1\nsettings:\n   neuron_cooldown: 10000000.0\nbricks:\n"
TWO_INPUTS = HEAD + (
    "    1,1,1\n        input: pixels\n        number_of_neurons: 784\n"
    "    1,2,1\n        input: extra\n        number_of_neurons: 3\n"
    "    2,1,1\n        number_of_neurons: 20\n"
    "    3,1,1\n        output: digit\n        number_of_neurons: 10\n")
TWO_OUTPUTS = HEAD + (
    "    1,1,1\n        input: x\n        number_of_neurons: 2\n"
    "    3,1,1\n        output: a\n        number_of_neurons: 1\n"
    "    3,2,1\n        output: b\n        number_of_neurons: 1\n")
NO_INPUT = HEAD + "    1,1,1\n        number_of_neurons: 2\n    3,1,1\n        output: a\n        number_of_neurons: 1\n"
NO_SIZES = HEAD + "    1,1,1\n        input: x\n    3,1,1\n        output: y\n        number_of_neurons: 1\n"
NO_OUTPUT_SIZE = HEAD + "    1,1,1\n        input: x\n        number_of_neurons: 2\n    3,1,1\n        output: y\n"


def refusal(template: str, hello: dict) -> Refused:
    with pytest.raises(Refused) as raised:
        choose_layout(parse_template(template), hello)
    return raised.value


def test_the_bricks_named_in_the_hello_are_checked_against_the_template() -> None:
    layout = choose_layout(parse_template(EXAMPLE_MNIST_TEMPLATE), {"input": "test_input", "output": "test_output"})
    assert layout == Layout("test_input", 784, "test_output", 10, True)
    # one input brick and no names given: the template's bricks
    assert choose_layout(parse_template(EXAMPLE_CSV_TEMPLATE), {}) == Layout("test_input", 1, "test_output", 1, True)
    assert choose_layout(parse_template(TWO_INPUTS), {"input": "extra"}) == Layout("extra", 3, "digit", 10, True)


def test_unknown_bricks_are_refused_with_the_ones_the_cluster_has() -> None:
    wrong_input = refusal(TWO_INPUTS, {"input": "nope", "output": "digit"})
    assert wrong_input.message == "The cluster has no input brick named 'nope'; its input bricks are: extra, pixels."
    assert wrong_input.code == CLOSE_BAD_REQUEST
    unnamed = refusal(TWO_INPUTS, {})  # two inputs: the hello has to name one
    assert unnamed.message == "The cluster has no input brick named 'None'; its input bricks are: extra, pixels."
    wrong_output = refusal(EXAMPLE_MNIST_TEMPLATE, {"input": "test_input", "output": "test_input"})
    assert wrong_output.message == "The cluster has no output brick named 'test_input'; its output brick is 'test_output'."
    assert wrong_output.code == CLOSE_BAD_REQUEST


@pytest.mark.parametrize("template, problem", [
    (NO_INPUT, "The cluster's template has no input brick."),
    (TWO_OUTPUTS, "Direct IO needs a cluster with exactly one output brick."),
])
def test_templates_direct_io_cannot_work_with(template: str, problem: str) -> None:
    assert layout_problem(parse_template(template)) == problem
    refused = refusal(template, {})
    assert (refused.message, refused.code) == (problem, CLOSE_BAD_REQUEST)


def test_good_templates_have_no_layout_problem() -> None:
    for template in (EXAMPLE_MNIST_TEMPLATE, EXAMPLE_CSV_TEMPLATE, TWO_INPUTS):
        assert layout_problem(parse_template(template)) == ""


@pytest.mark.parametrize("template", [NO_SIZES, NO_OUTPUT_SIZE])
def test_bricks_without_a_size_are_refused(template: str) -> None:
    refused = refusal(template, {"input": "x"})
    assert (refused.message, refused.code) == ("The template does not give the bricks' number of neurons.",
                                               CLOSE_BAD_REQUEST)


def test_without_a_template_nothing_is_sent() -> None:
    with pytest.raises(Refused) as raised:
        choose_layout(None, {"input": "test_input", "output": "test_output"})
    assert raised.value.message == (
        "The console does not know this cluster's template, so it cannot check the brick names. "
        "Give the cluster's template on this page first.")
    assert raised.value.code == CLOSE_BAD_REQUEST


def test_a_refusal_defaults_to_the_refused_close_code() -> None:
    refused = Refused("no", reason="held")
    assert (str(refused), refused.message, refused.code, refused.extra) == ("no", "no", CLOSE_REFUSED,
                                                                             {"reason": "held"})


async def test_the_remembered_template_and_the_notes_for_the_page() -> None:
    store = MemoryStore()
    assert await cluster_template(store, "c1") == (
        None, "This console did not create this cluster, so it does not know its template.")
    await remember_template(store, "c1", EXAMPLE_MNIST_TEMPLATE)
    template, note = await cluster_template(store, "c1")
    assert note == "" and template is not None and [b.input_name for b in template.input_bricks] == ["test_input"]
    await remember_template(store, "c2", "version: 1\nbricks:\n    1,1,1\n        nonsense: 1\n")
    broken, note = await cluster_template(store, "c2")
    # the parser's own words (Hanami's spelling) and the line
    assert (broken, note) == (None, "The remembered template does not parse (unkown brick-field 'nonsense', line 5).")
