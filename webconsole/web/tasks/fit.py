"""Does a dataset fit a cluster? Checked before a task is queued, from the template the console knows.

Hanami checks nothing of the kind (§4.23), and a real 0.4.1 ends its process on two pairings: an
MNIST dataset whose images have more pixels than the cluster's input brick has neurons, and a CSV
with fewer rows than that (its cycle count, lines − inputs, wraps). Other misfits are queued,
"finish" at once having done nothing, and look like a success. The console knows the template of
every cluster it created or restored (``clusters.memory``), or that a user declared on the
cluster's direct IO page, and the dataset's shape (``GET v1/dataset``; the CSV's column names when
it was uploaded through the console), so it says why a pairing cannot work before anything is
queued. Hanami cannot tell a cluster's template (Q-K3): on a cluster whose template the console
does not know, no task is queued.
"""

from __future__ import annotations

from typing import Any

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import BackendError, NotFound
from webconsole.protocol.template import ClusterTemplate, TemplateError, parse_template
from webconsole.sessions import KeyValueStore
from webconsole.web.clusters.memory import dataset_facts

UNKNOWN_TEMPLATE = ("The console does not know this cluster's template: it was made outside the console. Hanami "
                    "ends its process on some datasets that do not fit a cluster (images with more pixels than "
                    "the input brick has neurons, a CSV with fewer rows than that), and cannot say what a "
                    "cluster holds, so the console queues tasks only on clusters whose template it knows. "
                    "Declare the template on the cluster's direct IO page, then queue the task.")


async def refusal(store: KeyValueStore, api: HanamiAPI, kind: str, template_text: str | None,
                  dataset: dict[str, Any]) -> str:
    """Why a ``kind`` task of the listed ``dataset`` must not be queued on the cluster whose known
    template is ``template_text`` (``clusters.memory.known_template``); "" if it may."""
    template = known_shape(template_text)
    if template is None:
        return UNKNOWN_TEMPLATE
    uuid = str(dataset.get("uuid"))
    try:
        detail = await api.get_dataset(uuid)
    except (BackendError, NotFound):
        return ""  # an unfinished upload: Hanami's own answer (500) is explained after the POST
    facts = (await dataset_facts(store, [uuid])).get(uuid)
    columns = facts.get("columns") if facts and detail.get("type") == "csv" else None
    return pairing_problem(template, kind, detail, columns)


def known_shape(text: str | None) -> ClusterTemplate | None:
    if not text:
        return None
    try:
        return parse_template(text)
    except TemplateError:
        return None


def pairing_problem(template: ClusterTemplate | None, kind: str, dataset: dict[str, Any],
                    columns: list[str] | None) -> str:
    """Why ``dataset`` cannot feed a ``kind`` task of a cluster built from ``template``; "" if it can
    (or if the console cannot tell). ``dataset`` is ``GET v1/dataset``'s answer."""
    if template is None or not template.input_bricks or not template.output_bricks:
        return ""
    brick_in, brick_out = template.input_bricks[0], template.output_bricks[0]
    lines = dataset.get("lines")
    if dataset.get("type") == "mnist":
        inputs, outputs = dataset.get("inputs"), dataset.get("outputs")
        if isinstance(inputs, int) and brick_in.neurons and inputs != brick_in.neurons:
            return (f"This dataset's images have {inputs} pixels, but the cluster's input brick "
                    f"'{brick_in.name}' has {brick_in.neurons} neurons: the task would run without learning "
                    "or answering anything. Choose a cluster made for these images (an MNIST cluster has "
                    "784 inputs and 10 outputs), or another dataset.")
        if isinstance(outputs, int) and brick_out.neurons and outputs != brick_out.neurons:
            return (f"This dataset has {outputs} classes, but the cluster's output brick '{brick_out.name}' "
                    f"has {brick_out.neurons} neurons: its answers could not be compared with the labels. "
                    "Choose a cluster with one output neuron per class, or another dataset.")
        return ""
    if dataset.get("type") == "csv":
        needed = [brick_in.name] + ([brick_out.name] if kind == "train" else [])
        missing = [name for name in needed if columns is not None and name not in columns]
        if missing:
            return (f"This CSV has no column named {', '.join(repr(m) for m in missing)}; its columns are "
                    f"{', '.join(repr(c) for c in columns or [])}. Hanami feeds the column named like the "
                    "cluster's input brick and, for training, compares with the one named like its output "
                    "brick. Rename the CSV's columns and upload it again, or choose another cluster.")
        if isinstance(lines, int) and brick_in.neurons and lines <= brick_in.neurons:
            return (f"This CSV has {lines} rows, but the cluster's input brick '{brick_in.name}' reads "
                    f"{brick_in.neurons} values at a time, so not one step fits (a task needs more rows than "
                    "input neurons): the task would finish at 0 % having done nothing. Use a longer CSV, or "
                    "a cluster with a smaller input brick.")
    return ""
