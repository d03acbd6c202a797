"""`hanami-console`: serve the console, run the demo, run the embedded backend, write demo data."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import uvicorn

from webconsole.settings import Settings


def _uvicorn_options(settings: Settings) -> dict[str, object]:
    return {
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,
        "log_config": None,
        "ws": "websockets-sansio",
        "timeout_graceful_shutdown": 10,
    }


def _serve_app(settings: Settings, host: str, port: int) -> None:
    """One process serving an app built here (the demo: its settings are not in the environment)."""
    from webconsole.app import create_app, settle_heap

    app = create_app(settings)
    settle_heap()
    uvicorn.run(app, host=host, port=port, **_uvicorn_options(settings))  # type: ignore[arg-type]


def serve_workers(settings: Settings, requested: int | None) -> int:
    """How many worker processes ``serve`` runs: ``--workers``, else one per core.

    Workers share nothing but the session store, so a ``memory://`` store allows one only: a session
    made by one worker would be unknown to the next (an explicit ``--workers N`` is refused, the
    default falls back to one worker).
    """
    shared = not settings.session_store_url.startswith("memory://")
    if requested is not None:
        if requested < 1:
            raise ValueError("--workers must be at least 1")
        if requested > 1 and not shared:
            raise ValueError(
                f"--workers {requested} needs a shared session store (sqlite:///FILE on one host, "
                "redis://HOST across hosts): with memory:// each worker would know only its own sessions"
            )
        return requested
    return cores() if shared else 1


def cores() -> int:
    """The cores this process may run on (a container's cpuset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        settings.require_secret()
        workers = serve_workers(settings, args.workers)
    except ValueError as exc:
        print(f"hanami-console: {exc}", file=sys.stderr)
        return 2
    print(f"Hanami console on http://{args.host}:{args.port}{settings.root_path}/ "
          f"(backend {settings.backend_url}, {workers} worker{'s' if workers > 1 else ''})", flush=True)
    # Every worker imports the app factory and reads the same settings from the environment.
    with metrics_shared_by(workers):
        uvicorn.run("webconsole.app:create_app_from_environment", factory=True, host=args.host, port=args.port,
                    workers=workers, **_uvicorn_options(settings))  # type: ignore[arg-type]
    return 0


# Not imported from webconsole.metrics: importing prometheus_client here, in the process that runs a
# single worker, would make it choose where values live before this variable is settled.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_shared_by(workers: int) -> Iterator[Path | None]:
    """Where the workers' metrics meet, so that ``/metrics`` shows the whole console's figures.

    Several workers: a fresh private directory in the system's temp dir (``TMPDIR``), named in the
    environment each worker inherits (prometheus_client reads it when a worker first imports it) and
    removed when the workers have stopped. One process keeps its figures in memory: a directory
    named in the environment that started it is not used (nothing would empty it between runs).
    """
    previous = os.environ.pop(MULTIPROCESS_DIR, None)
    folder = Path(tempfile.mkdtemp(prefix="hanami-console-metrics-")) if workers > 1 else None
    if folder is not None:
        os.environ[MULTIPROCESS_DIR] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        if previous is not None:
            os.environ[MULTIPROCESS_DIR] = previous
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _demo_admin(state_dir: Path) -> tuple[str, str, str]:
    """Admin account for the demo: from HANAMI_ADMIN_*, else generated once and kept in the state dir."""
    env = (os.environ.get("HANAMI_ADMIN_USER_ID"), os.environ.get("HANAMI_ADMIN_USER_NAME"),
           os.environ.get("HANAMI_ADMIN_PASSWORD"))
    if all(env):
        return env  # type: ignore[return-value]
    saved = state_dir / "demo-admin.json"
    if saved.exists():
        data = json.loads(saved.read_text())
        return data["id"], data["name"], data["password"]
    account = ("demo_admin", "Demo Admin", secrets.token_urlsafe(12))
    saved.write_text(json.dumps({"id": account[0], "name": account[1], "password": account[2]}))
    saved.chmod(0o600)
    return account


def cmd_demo(args: argparse.Namespace) -> int:
    from webconsole.demo_data import write_demo_data
    from webconsole.emulator import EmulatorConfig, EmulatorServer

    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    admin_id, admin_name, admin_password = _demo_admin(state_dir)
    try:
        demo = write_demo_data(state_dir / "demo-data")
    except RuntimeError as exc:
        print(f"hanami-console: {exc}", file=sys.stderr)
        return 2
    emulator = EmulatorServer(
        EmulatorConfig(
            state_dir=state_dir / "backend",
            host="127.0.0.1",
            port=0,
            admin_id=admin_id,
            admin_name=admin_name,
            admin_password=admin_password,
        )
    )
    emulator.start()
    settings = Settings(
        backend_url=emulator.url,
        session_store_url=f"sqlite:///{state_dir / 'console-sessions.db'}",
        readiness_user_id=admin_id,
        readiness_password=admin_password,
    ).with_generated_secret()
    url = f"http://{args.host}:{args.port}{settings.root_path}/"
    print(
        "\n".join(
            [
                "",
                "Hanami Web Console demo",
                f"  open      {url}",
                f"  user id   {admin_id}",
                f"  password  {admin_password}",
                f"  backend   embedded Hanami at {emulator.url} (state in {state_dir})",
                f"  data      demo datasets to upload are in {demo.folder}",
                "  stop      Ctrl+C",
                "",
            ]
        ),
        flush=True,
    )
    try:
        with metrics_shared_by(1):
            _serve_app(settings, args.host, args.port)
    finally:
        emulator.stop()
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from webconsole.emulator import EmulatorConfig, serve

    config = EmulatorConfig(
        state_dir=Path(args.state_dir).resolve(), host=args.host, port=args.port, quirks=args.quirks
    )
    print(f"Embedded Hanami backend on http://{args.host}:{args.port} (state in {config.state_dir})",
          flush=True)
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from webconsole.demo_data import write_demo_data

    try:
        demo = write_demo_data(Path(args.folder))
    except RuntimeError as exc:
        print(f"hanami-console: {exc}", file=sys.stderr)
        return 2
    print(f"Demo data written to {demo.folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hanami-console", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the console against HANAMI_CONSOLE_BACKEND_URL")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=None,
                       help="worker processes (default: one per core; one with a memory:// session store)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the console on the embedded Hanami with demo data")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--state-dir", default="demo-state", help="where the demo keeps its data")
    demo.set_defaults(func=cmd_demo)

    emulator = sub.add_parser("emulator", help="run only the embedded Hanami-compatible backend")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=11418)
    emulator.add_argument("--state-dir", default="hanami-state")
    emulator.add_argument("--quirks", choices=("lenient", "faithful"), default="lenient")
    emulator.set_defaults(func=cmd_emulator)

    data = sub.add_parser("demo-data", help="write the demo MNIST and CSV files to a folder")
    data.add_argument("folder")
    data.set_defaults(func=cmd_demo_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
