"""What Hanami itself says about a cluster's bricks, to check a declared template against.

Hanami has no API to read a cluster's template (Q-K3), and never answers a message for a brick the
cluster does not have (Q-W1: on the real server that costs a worker thread for good). It does name
bricks in two places:

* a CSV request task's result is named after the cluster's **input brick** (Q-T3), so every CSV
  request run on the cluster through the console (whose task memory knows the cluster and the
  task's own name) tells one input brick name;
* a direct-IO answer to a request comes from the **output brick** and carries its name.

Those names are kept as "seen" (``web/clusters/memory.py``). A declared template must agree with
them, and for a declared template the bridge sends only seen names.
"""

from __future__ import annotations

from typing import Any

from webconsole.hanami.client import HanamiAPI
from webconsole.protocol.template import ClusterTemplate
from webconsole.sessions import read_record
from webconsole.web.clusters.memory import bricks_seen, remember_bricks_seen
from webconsole.web.direct_io.locks import TASK_META_PREFIX


async def input_bricks_named_by_hanami(api: HanamiAPI, store: Any, cluster_uuid: str) -> dict[str, str]:
    """``{input brick name: task name}`` from the CSV request results of this cluster's tasks (one
    backend call; the rest is the console's own task memory). Also kept as seen."""
    named: dict[str, str] = {}
    for result in (await api.list_results()).records():
        meta = await read_record(store, TASK_META_PREFIX + str(result.get("uuid", "")))
        if meta is None or meta.get("cluster_uuid") != cluster_uuid or meta.get("type") != "request":
            continue
        name = str(result.get("name", ""))
        if name and name != meta.get("name"):  # an MNIST result keeps the task's name
            named[name] = str(meta.get("name", ""))
    if named:
        await remember_bricks_seen(store, cluster_uuid, "input", sorted(named))
    return named


async def disagreement(api: HanamiAPI, store: Any, cluster_uuid: str, template: ClusterTemplate) -> str:
    """Why ``template`` cannot be this cluster's, as far as Hanami told ('' when nothing disagrees)."""
    named = await input_bricks_named_by_hanami(api, store, cluster_uuid)
    seen = await bricks_seen(store, cluster_uuid)
    inputs = {brick.input_name for brick in template.input_bricks}
    outputs = {brick.output_name for brick in template.output_bricks}
    for name in seen["input"]:
        if name not in inputs:
            source = (f"the result of the CSV request task '{named[name]}' is named after it" if name in named
                      else "Hanami accepted it in direct IO")
            return (f"Hanami says this cluster has an input brick named '{name}' ({source}), but the template's "
                    f"input bricks are: {', '.join(sorted(n for n in inputs if n)) or 'none'}.")
    for name in seen["output"]:
        if name not in outputs:
            return (f"Hanami answered direct IO from an output brick named '{name}', but the template's output "
                    f"bricks are: {', '.join(sorted(n for n in outputs if n)) or 'none'}.")
    return ""
