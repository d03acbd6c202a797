"""Train-and-evaluate runs: queue every pass at once, then advance the run as its tasks finish.

Hanami runs a cluster's tasks in order (§4.23, §7.2), so a run of N passes queues
``train, request[, save]`` N times in one go. Whoever looks at the run (its page, the cluster's
runs panel, the runs table) advances it under the run's lock in the shared store: each request
task that has finished is checked against the held-out dataset (one ``dataset/check`` per pass;
with the labels the console kept, one ``request_result`` read too for the confusion matrix), its
result deleted unless the run keeps results, the checkpoints of passes that are not the best so far
deleted once their save task ran, and with early stop the queued rest removed when the accuracy has
not improved for K passes. Everything the run knows is in its record, so a console restart loses
nothing: the tasks and results wait on Hanami until someone looks again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import HanamiError, NotFound
from webconsole.sessions import KeyValueStore
from webconsole.web.datasets.contents import known_labels
from webconsole.web.runs.analysis import confusion_matrix, predictions_of
from webconsole.web.runs.records import release_lock, save_predictions, save_run, take_lock

log = logging.getLogger("webconsole.runs")

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PENDING_TASK = ("queued", "active", "aborted")
CHECKS_PER_LOOK = 5  # a viewer coming back after many passes catches up over a few polls, not in one request


def step_names(run_name: str, number: int) -> dict[str, str]:
    """Task and checkpoint names of one pass (Hanami's NAME rule: letters, digits, _ and spaces)."""
    return {"train": f"{run_name} pass {number} train", "request": f"{run_name} pass {number} check",
            "save": f"{run_name} pass {number}"}


def _seconds(record: dict[str, Any] | None) -> float | None:
    """A finished task's duration from Hanami's timestamps (whole seconds)."""
    if not record:
        return None
    try:
        start = datetime.strptime(str(record.get("start")), TIME_FORMAT).replace(tzinfo=timezone.utc)
        end = datetime.strptime(str(record.get("end")), TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return (end - start).total_seconds()


def best_step(run: dict[str, Any]) -> dict[str, Any] | None:
    best = None
    for step in run["steps"]:
        if step.get("accuracy") is not None and (best is None or step["accuracy"] > best["accuracy"]):
            best = step
    return best


def pending_steps(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in run["steps"] if step["state"] == "queued"]


async def advance(api: HanamiAPI, store: KeyValueStore, run: dict[str, Any]) -> dict[str, Any]:
    """Bring the run up to date with its cluster's tasks; returns the (maybe updated) record.

    Does nothing when another viewer holds the run's lock: that one advances it.
    """
    if run["state"] != "running":
        return run
    token = await take_lock(store, run["id"])
    if token is None:
        return run
    try:
        changed = await _advance(api, store, run)
        if changed:
            run["updated_at"] = time.time()
            await save_run(store, run)
    except HanamiError as exc:
        # Try again at the next look; the record keeps what was done so far.
        log.warning("run could not be advanced", extra={"run": run["id"], "error": type(exc).__name__})
    finally:
        await release_lock(store, run["id"], token)
    return run


async def _task_rows(api: HanamiAPI, cluster_uuid: str) -> dict[str, dict[str, Any]]:
    """The cluster's ``task/all`` rows by task uuid."""
    return {str(r.get("uuid")): r for r in (await api.list_tasks(cluster_uuid)).records()}


async def _advance(api: HanamiAPI, store: KeyValueStore, run: dict[str, Any]) -> bool:
    try:
        rows = await _task_rows(api, run["cluster_uuid"])
    except NotFound:
        run["state"], run["ended_at"] = "broken", time.time()
        run["note"] = ("The cluster no longer exists (deleted, or Hanami restarted): "
                       "the passes not checked yet are lost.")
        return True
    changed = False
    checks = 0
    for step in run["steps"]:
        if step["state"] != "queued":
            continue
        if checks >= CHECKS_PER_LOOK:
            break
        request = rows.get(step["request"])
        if request is not None and request.get("state") in PENDING_TASK:
            break  # FIFO: no later pass has finished either
        if request is None and not await _result_exists(api, step["request"]):
            step["state"] = "removed"
            run["state"], run["ended_at"] = "broken", time.time()
            run["note"] = (f"The tasks of pass {step['pass']} were removed outside the console, so the run "
                           "cannot go on; the passes before it are kept.")
            changed = True
            break
        try:
            await _check(api, store, run, step, rows)
        except NotFound as exc:
            # The held-out dataset or the pass's result went away meanwhile: this pass cannot be measured.
            step["state"] = "removed"
            run["state"], run["ended_at"] = "broken", time.time()
            run["note"] = f"Pass {step['pass']} could not be checked: {exc.message or 'Hanami answered 404'}"
            changed = True
            break
        checks += 1
        changed = True
        if _should_stop(run, step):
            rows = await _remove_rest(api, run, f"Stopped early: no improvement for {run['patience']} passes "
                                                f"after pass {best_step(run)['pass']}.")  # type: ignore[index]
            run["stopped"] = True
    changed = await _prune_checkpoints(api, run, rows) or changed
    if run["state"] == "running" and not pending_steps(run) and all(_checkpoint_settled(s) for s in run["steps"]):
        run["state"], run["ended_at"] = ("stopped" if run.get("stopped") else "finished"), time.time()
        best = best_step(run)
        run["best_checkpoint"] = best.get("save") if best and best.get("checkpoint") == "kept" else None
        changed = True
    return changed


async def _result_exists(api: HanamiAPI, uuid: str) -> bool:
    """A request task removed after it finished still left its result (§4.26)."""
    try:
        await api.get_result(uuid)
    except NotFound:
        return False
    return True


async def _check(api: HanamiAPI, store: KeyValueStore, run: dict[str, Any], step: dict[str, Any],
                 rows: dict[str, dict[str, Any]]) -> None:
    """One pass's measurement: Hanami's accuracy, and the confusion matrix when the labels are known."""
    previous_best = best_step(run)
    step["accuracy"] = await api.check_dataset(step["request"], run["test_uuid"])
    step["train_seconds"] = _seconds(rows.get(step["train"]))
    step["request_seconds"] = _seconds(rows.get(step["request"]))
    step["checked_at"] = time.time()
    labels = await known_labels(store, run["test_uuid"])
    predictions = None
    if labels is not None:
        predictions = predictions_of((await api.get_result(step["request"])).get("data"))
        if predictions is not None:
            step["confusion"] = confusion_matrix(predictions, labels)
    if run.get("keep_results"):
        step["result_kept"] = True
    else:
        try:
            await api.delete_result(step["request"])
        except NotFound:
            pass
        step["result_kept"] = False
    step["state"] = "done"
    best = best_step(run)
    if best is step and predictions is not None:
        await save_predictions(store, run["id"], step["pass"], predictions)
    if best is step and previous_best is not None and previous_best.get("checkpoint") == "kept":
        await _delete_checkpoint(api, previous_best)


def _should_stop(run: dict[str, Any], step: dict[str, Any]) -> bool:
    best = best_step(run)
    patience = int(run.get("patience") or 0)
    return bool(patience and not run.get("stopped") and best is not None and pending_steps(run)
                and step["pass"] - best["pass"] >= patience)


async def _remove_rest(api: HanamiAPI, run: dict[str, Any], note: str) -> dict[str, dict[str, Any]]:
    """Take the train and request tasks of the passes whose training has not started off the queue;
    returns the cluster's task rows without them.

    Which passes are still queued is asked of Hanami here, not taken from a list read earlier: after
    a look's checks such a list is seconds old, and Hanami may have run more passes meanwhile.

    A pass already training runs to its end anyway (Q-T4), so it stays and is measured like the
    others. Queued checkpoint saves are left to run (they take no time) and their checkpoints are
    deleted afterwards: removing a queued save task from the middle of the queue brings the real
    Hanami down (seen on 0.4.1: the queue stalls, then the server segfaults).
    """
    rows = await _task_rows(api, run["cluster_uuid"])
    for step in pending_steps(run):
        if rows.get(step["train"], {}).get("state") != "queued":
            continue
        for key in ("train", "request"):
            uuid = step.get(key)
            if uuid and rows.get(uuid, {}).get("state") == "queued":
                try:
                    await api.delete_task(uuid, run["cluster_uuid"])
                except NotFound:
                    pass
                rows.pop(uuid, None)
        step["state"] = "skipped"
    run["note"] = note
    return rows


async def stop(api: HanamiAPI, store: KeyValueStore, run: dict[str, Any]) -> bool:
    """The user's stop: remove the queued rest. False when another viewer holds the lock right now."""
    token = await take_lock(store, run["id"])
    if token is None:
        return False
    try:
        await _remove_rest(api, run, "Stopped by the user: the passes not run yet were removed from the queue.")
        run["stopped"] = True
        await save_run(store, run)
    finally:
        await release_lock(store, run["id"], token)
    return True


def _checkpoint_settled(step: dict[str, Any]) -> bool:
    return not step.get("save") or step.get("checkpoint") in ("kept", "deleted")


async def _delete_checkpoint(api: HanamiAPI, step: dict[str, Any]) -> None:
    try:
        await api.delete_checkpoint(step["save"])
    except NotFound:
        pass
    step["checkpoint"] = "deleted"


async def _prune_checkpoints(api: HanamiAPI, run: dict[str, Any], rows: dict[str, dict[str, Any]]) -> bool:
    """Keep only the best pass's checkpoint: every other one goes once its save task has run."""
    best = best_step(run)
    changed = False
    for step in run["steps"]:
        if _checkpoint_settled(step) or step["state"] == "queued":
            continue
        row = rows.get(step["save"])
        # A save task is never removed (see _remove_rest): wait until it ran, then delete its checkpoint.
        if row is not None and row.get("state") != "finished":
            continue
        if step is best:
            step["checkpoint"] = "kept"
        else:
            await _delete_checkpoint(api, step)
        changed = True
    return changed
