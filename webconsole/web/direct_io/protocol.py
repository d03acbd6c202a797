"""What a direct-IO bridge and its page agree on before any exchange: the bricks and the refusals.

The browser's hello names an input and an output brick; ``choose_layout`` checks them against the
cluster's template (the console remembers it when it created the cluster) so that the backend never
sees an unknown brick (Q-W1). Anything that stops a bridge from opening is a ``Refused`` with a
message for the user and a websocket close code the page understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webconsole.protocol.template import ClusterTemplate, TemplateError, parse_template
from webconsole.web.clusters.memory import known_template

# close codes the page understands (4000-4999 are free for applications)
CLOSE_NORMAL = 1000
CLOSE_REFUSED = 4403
CLOSE_BUSY = 4409
CLOSE_BAD_REQUEST = 4400
CLOSE_BACKEND = 4502
CLOSE_IDLE = 4408
CLOSE_SESSION = 4401
CLOSE_SHUTDOWN = 1001


@dataclass(frozen=True)
class Layout:
    """The two bricks a bridge talks to."""

    input_name: str
    input_size: int
    output_name: str
    output_size: int
    from_template: bool


class Refused(Exception):
    """The bridge cannot open (or must close) for a reason the user should read."""

    def __init__(self, message: str, code: int = CLOSE_REFUSED, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra


async def cluster_template(store: Any, cluster_uuid: str) -> tuple[ClusterTemplate | None, str]:
    """(parsed template or None, note for the page)."""
    text = await known_template(store, cluster_uuid)
    if text is None:
        return None, "This console did not create this cluster, so it does not know its template."
    try:
        return parse_template(text), ""
    except TemplateError as exc:
        return None, f"The remembered template does not parse ({exc.message}, line {exc.line})."


def layout_problem(template: ClusterTemplate) -> str:
    """Why direct IO cannot work with this template ('' when it can)."""
    if not template.input_bricks:
        return "The cluster's template has no input brick."
    if len(template.output_bricks) != 1:
        # several output bricks desynchronise the lock-step (Q-W6)
        return "Direct IO needs a cluster with exactly one output brick."
    return ""


def choose_layout(template: ClusterTemplate | None, hello: dict[str, Any]) -> Layout:
    """The bricks of the hello message, checked against the template or the declared sizes."""
    input_name = hello.get("input")
    output_name = hello.get("output")
    if template is not None:
        problem = layout_problem(template)
        if problem:
            raise Refused(problem, CLOSE_BAD_REQUEST)
        inputs = {b.input_name: b for b in template.input_bricks}
        output = template.output_bricks[0]
        if input_name is None and len(inputs) == 1:
            input_name = next(iter(inputs))
        if input_name not in inputs:
            raise Refused(
                f"The cluster has no input brick named {str(input_name)!r}; "
                f"its input bricks are: {', '.join(sorted(n for n in inputs if n))}.",
                CLOSE_BAD_REQUEST,
            )
        if output_name is not None and output_name != output.output_name:
            raise Refused(
                f"The cluster has no output brick named {str(output_name)!r}; "
                f"its output brick is {output.output_name!r}.",
                CLOSE_BAD_REQUEST,
            )
        brick = inputs[input_name]
        if brick.neurons < 1 or output.neurons < 1:
            raise Refused("The template does not give the bricks' number of neurons.", CLOSE_BAD_REQUEST)
        return Layout(str(input_name), brick.neurons, str(output.output_name), output.neurons, True)
    # Unknown template: Hanami never answers a brick name the cluster lacks (Q-W1) and the real
    # backend loses a worker thread for good, so nothing is sent without a template to check against.
    raise Refused(
        "The console does not know this cluster's template, so it cannot check the brick names. "
        "Give the cluster's template on this page first.",
        CLOSE_BAD_REQUEST,
    )
