"""python -m webconsole.emulator --host --port --state-dir --quirks"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from .backend import StartupError
from .config import EmulatorConfig
from .server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webconsole.emulator",
                                     description="Run the embedded Hanami backend.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11418)
    parser.add_argument("--state-dir", type=Path, default=Path("hanami-state"))
    parser.add_argument("--quirks", choices=("lenient", "faithful"), default="lenient")
    parser.add_argument("--policy-file", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = EmulatorConfig(state_dir=args.state_dir, host=args.host, port=args.port,
                            quirks=args.quirks, policy_file=args.policy_file)
    try:
        asyncio.run(serve(config))
    except StartupError as err:
        parser.exit(2, f"error: {err}\n")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
