"""Mutation testing of the modules that guard users, one module at a time, with mutmut 3.

    .venv/bin/pip install mutmut
    nice -n 19 .venv/bin/python bench/mutation.py                       # every module below
    nice -n 19 .venv/bin/python bench/mutation.py direct_io/protocol   # the modules whose path contains it
    .venv/bin/python bench/mutation.py --list

Each module runs in its own scratch copy of the working tree (so the checkout is never touched and
uncommitted tests count) with a ``[tool.mutmut]`` section that mutates only that module and runs
only its fast relevant tests. The report is one line per module: mutants killed, survived, timed
out, not reached by any test, and the score (killed and timed out over all mutants: one that no
test reaches counts as a survivor). The
survivors' names follow; ``mutmut show NAME`` in the scratch folder prints a mutant's diff.

Not part of the test suite (a module takes minutes to an hour); the tests it relies on are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: module -> the tests that exercise it (fast ones first; mutmut runs only those that reach a mutant)
MODULES: dict[str, list[str]] = {
    "webconsole/web/direct_io/protocol.py": [
        "tests/console/test_direct_io_protocol.py",
        "tests/console/test_direct_io.py::test_unknown_brick_is_refused_before_sending",
        "tests/console/test_direct_io.py::test_busy_cluster_is_refused_with_the_task_named",
    ],
    "webconsole/sessions/manager.py": [
        "tests/console/test_session_manager_edges.py",
        "tests/console/test_sessions.py",
        "tests/console/test_auth.py",
    ],
    "webconsole/web/core/errors.py": [
        "tests/console/test_error_mapper.py",
        "tests/console/test_auth.py",
        "tests/console/test_security.py",
    ],
    "webconsole/web/core/deps.py": [
        "tests/console/test_csrf_origin.py",
        "tests/console/test_session_guards.py",
        "tests/console/test_login_effects.py",
        "tests/console/test_security.py",
        "tests/console/test_auth.py",
    ],
    "webconsole/protocol/csvdata.py": ["tests/protocol/test_csvdata.py", "tests/protocol/test_csvdata_messages.py"],
    "webconsole/protocol/idx.py": ["tests/protocol/test_idx.py", "tests/protocol/test_idx_messages.py",
                                   "tests/protocol/test_idx_capacity.py", "tests/protocol/test_idx_reading.py"],
    "webconsole/web/access/auth.py": [
        "tests/console/test_login_effects.py",
        "tests/console/test_login_audit.py",
        "tests/console/test_csrf_origin.py",
        "tests/console/test_auth.py",
    ],
    "webconsole/web/datasets/upload_task.py": [
        "tests/console/test_upload_task.py",
        "tests/console/test_upload_pages.py::test_cancel_of_a_running_upload_waits_for_its_end",
        "tests/console/test_datasets.py::test_temporary_files_are_removed_in_every_outcome",
    ],
    "webconsole/hanami/uploads.py": [
        "tests/hanami/test_upload_flow.py",
        "tests/hanami/test_client_websockets.py",
        "tests/hanami/test_against_emulator.py::test_csv_upload",
        "tests/hanami/test_against_emulator.py::test_mnist_upload",
        "tests/hanami/test_against_emulator.py::test_cancelled_upload_leaves_no_dataset",
    ],
    "webconsole/web/datasets/uploads.py": [
        "tests/console/test_upload_pages.py",
        "tests/console/test_datasets.py",
    ],
    "webconsole/hanami/client.py": [
        "tests/hanami/test_client_errors.py",
        "tests/hanami/test_client_guards.py",
        "tests/hanami/test_client_wire.py",
    ],
    "webconsole/hanami/api.py": [
        "tests/hanami/test_api_requests.py",
        "tests/hanami/test_api_guards.py",
        "tests/hanami/test_client_websockets.py",
        "tests/hanami/test_client_errors.py",
        "tests/hanami/test_client_guards.py",
        "tests/hanami/test_client_wire.py",
        "tests/hanami/test_against_emulator.py",
    ],
}

COPIED = ("webconsole", "templates", "static", "tests", "pyproject.toml")

#: every pytest run of a mutant: quiet, in file order, and without the real-server runs (those are the
#: suite's: a real Hanami takes seconds to start and ~1.7 GB; the same tests run on the emulator here)
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=", "-m", "not real_hanami"]


def _slug(module: str) -> str:
    return module.removeprefix("webconsole/").removesuffix(".py").replace("/", "-")


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def prepare(module: str, tests: list[str], work: Path, source: Path = ROOT) -> Path:
    """A scratch copy of the working tree (or ``source``) whose pyproject mutates ``module`` only."""
    folder = work / _slug(module)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "mutants")
    for name in COPIED:
        if (source / name).is_dir():
            shutil.copytree(source / name, folder / name, ignore=ignore)
        else:
            shutil.copy2(source / name, folder / name)
    existing = [test for test in tests if (source / test.split("::")[0]).exists()]
    config = (
        "\n[tool.mutmut]\n"
        'source_paths = ["webconsole"]\n'
        f"only_mutate = {_toml_list([module])}\n"
        'also_copy = ["templates", "static"]\n'
        f"pytest_add_cli_args_test_selection = {_toml_list(existing)}\n"
        f"pytest_add_cli_args = {_toml_list(PYTEST_ARGS)}\n"
    )
    with (folder / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write(config)
    return folder


def run(module: str, tests: list[str], work: Path, children: int, source: Path = ROOT) -> dict[str, object]:
    folder = prepare(module, tests, work, source)
    mutmut = [sys.executable, "-m", "mutmut"]
    started = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    log = folder / "mutmut-run.log"
    with log.open("w") as out:
        subprocess.run([*mutmut, "run", "--max-children", str(children)], cwd=folder, env=env,
                       stdout=out, stderr=subprocess.STDOUT, check=False)
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=folder, env=env, capture_output=True, check=False)
    stats_file = folder / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    listing = subprocess.run([*mutmut, "results"], cwd=folder, env=env, capture_output=True, text=True,
                             check=False).stdout
    survivors = [line.split(":")[0].strip() for line in listing.splitlines() if line.strip().endswith("survived")]
    stats.update(module=module, folder=str(folder), minutes=round((time.monotonic() - started) / 60, 1),
                 survivors=survivors)
    return stats


def score(stats: dict[str, object]) -> float:
    """Killed (or timed out) over every mutant but the skipped: one that no test reaches counts as alive."""
    killed, timeout = int(stats.get("killed", 0)), int(stats.get("timeout", 0))
    tested = int(stats.get("total", 0)) - int(stats.get("skipped", 0))
    return 100.0 * (killed + timeout) / tested if tested else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="run the modules whose path contains one of these")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hanami-console-mutation"),
                        help="where the scratch copies go (default %(default)s)")
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the tree to copy (default: this checkout; e.g. a worktree of an older commit)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    chosen = {module: tests for module, tests in MODULES.items()
              if not args.only or any(part in module for part in args.only)}
    if args.list:
        for module, tests in chosen.items():
            print(module, *tests, sep="\n    ")
        return 0
    results = []
    print(f"{'module':44} {'killed':>6} {'surv.':>6} {'timeout':>7} {'no test':>7} {'score':>6} {'min':>5}")
    for module, tests in chosen.items():
        stats = run(module, tests, args.work, args.children, args.source)
        results.append(stats)
        print(f"{module:44} {stats.get('killed', 0):>6} {stats.get('survived', 0):>6} "
              f"{stats.get('timeout', 0):>7} {stats.get('no_tests', 0):>7} {score(stats):>5.1f}% "
              f"{stats['minutes']:>5}", flush=True)
        for name in stats["survivors"]:  # type: ignore[union-attr]
            print(f"    survived: {name}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
