"""Known breaks, re-made on purpose: each must fail its tests on every run.

    .venv/bin/python tests/breaks.py              # every break, 10 runs each
    .venv/bin/python tests/breaks.py 3 --runs 5   # break 3 only
    .venv/bin/python tests/breaks.py --list

Each break is a small edit of one source file that an outside review made and the suite once missed
(or caught only sometimes). The script copies the working tree to a scratch folder, applies one
break there (the checkout is never touched), runs the break's tests ``--runs`` times and counts the
runs that failed. Every break must fail ``runs`` of ``runs``; the exit status says whether they did.
A break whose edit no longer applies (the code moved) is an error, not a pass.

Not collected by pytest (no ``test_`` prefix): it runs the suite, it is not part of it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("webconsole", "templates", "static", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Break:
    what: str
    file: str
    edits: tuple[tuple[str, str], ...]  # (text in the file, its replacement): every one must apply
    tests: tuple[str, ...]


BREAKS: dict[str, Break] = {
    "1": Break(
        "parse_backend_time always returns None",
        "webconsole/web/admin/audit.py",
        (('        day, clock = str(value).split(" ")', '        return None'),),
        ("tests/console/test_audit.py", "tests/console/test_admin_errorlog.py"),
    ),
    "2a": Break(
        "the login redirect drops the query string of next (when sent to the login form)",
        "webconsole/web/core/errors.py",
        (('        target += "?" + request.url.query', "        pass"),),
        ("tests/console/test_auth.py", "tests/console/test_prefix.py"),
    ),
    "2b": Break(
        "the login redirect drops the query string of next (after the login)",
        "webconsole/web/access/auth.py",
        (("    next_url = safe_next(next)\n", '    next_url = safe_next(next).split("?")[0]\n'),),
        ("tests/console/test_auth.py", "tests/console/test_prefix.py"),
    ),
    "3": Break(
        "restore from the checkpoint page never calls Hanami",
        "webconsole/web/clusters/checkpoints.py",
        (("    await restore_into(request, api, cluster_uuid, uuid)\n", ""),),
        ("tests/console/test_checkpoints.py",),
    ),
    "4": Break(
        "failed or refused logins are never audited",
        "webconsole/web/access/auth.py",
        (
            ('        await audit.record(recorded, "login", "failed", address, "failed")\n', ""),
            ('                await audit.record(recorded, "login", "refused: too many failed attempts", address, '
             '"refused")\n', "                pass\n"),
            ("""        await audit.record(user_id, "login", "refused: role not allowed by Hanami's policy", """
             """address, "refused")\n""", ""),
        ),
        ("tests/console/test_login_audit.py", "tests/console/test_auth.py", "tests/console/test_security_review.py",
         "tests/console/test_audit.py"),
    ),
    "5a": Break(
        "the task list stops polling while tasks still run (the poll's answer)",
        "webconsole/web/tasks/rows.py",
        (('    return any(row["state"] in RUNNING for row in rows)', '    return False'),),
        ("tests/console/test_task_polling.py", "tests/console/test_tasks.py"),
    ),
    "5b": Break(
        "the task list stops polling while tasks still run (queued and active not counted)",
        "webconsole/web/tasks/rows.py",
        (('RUNNING = frozenset({"queued", "active", "aborted"})', 'RUNNING = frozenset({"aborted"})'),),
        ("tests/console/test_task_polling.py", "tests/console/test_tasks.py"),
    ),
    "5c": Break(
        "the task list stops polling while tasks still run (an active task not counted)",
        "webconsole/web/tasks/rows.py",
        (('RUNNING = frozenset({"queued", "active", "aborted"})', 'RUNNING = frozenset({"queued", "aborted"})'),),
        ("tests/console/test_task_polling.py", "tests/console/test_tasks.py"),
    ),
    "6": Break(
        "state-changing routes lose their CSRF and origin check (import-time code mutmut cannot reach)",
        "webconsole/web/core/deps.py",
        (("    return APIRouter(dependencies=[Depends(csrf_protect)], **kwargs)",
          "    return APIRouter(**kwargs)"),),
        ("tests/console/test_csrf_origin.py",),
    ),
}


def scratch_copy(folder: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "mutants")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        else:
            shutil.copy2(source, folder / name)


def apply(folder: Path, broken: Break) -> None:
    path = folder / broken.file
    text = path.read_text()
    for old, new in broken.edits:
        count = text.count(old)
        if count == 0:
            raise SystemExit(f"break '{broken.what}': {old.strip()!r} is no longer in {broken.file}")
        text = text.replace(old, new)
    path.write_text(text)


def run_break(key: str, broken: Break, runs: int, pytest_args: list[str]) -> int:
    """How many of ``runs`` runs failed."""
    with tempfile.TemporaryDirectory(prefix=f"console-break-{key}-") as name:
        folder = Path(name)
        scratch_copy(folder)
        apply(folder, broken)
        tests = [test for test in broken.tests if (folder / test.split("::")[0]).exists()]
        failed = 0
        for number in range(1, runs + 1):
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *pytest_args, *tests],
                cwd=folder, capture_output=True, text=True, check=False,
            )
            lines = done.stdout.strip().splitlines() or ["(no output)"]
            first = next((line for line in lines if line.startswith(("FAILED ", "ERROR "))), "")
            failed += done.returncode != 0
            print(f"  run {number:>2}: {'FAILED' if done.returncode else 'passed'}  {lines[-1]}  {first[:150]}",
                  flush=True)
        return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="the breaks to make (default: all)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--pytest", action="append", default=[], help="an extra pytest argument")
    args = parser.parse_args()
    chosen = {key: value for key, value in BREAKS.items() if not args.only or key in args.only}
    if args.list:
        for key, broken in chosen.items():
            print(f"{key}: {broken.what} ({broken.file}) -> {' '.join(broken.tests)}")
        return 0
    missed = []
    for key, broken in chosen.items():
        print(f"break {key}: {broken.what}", flush=True)
        failed = run_break(key, broken, args.runs, args.pytest)
        print(f"break {key}: caught in {failed} of {args.runs} runs", flush=True)
        if failed != args.runs:
            missed.append(key)
    if missed:
        print("not caught every time:", ", ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
