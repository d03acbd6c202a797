"""The embedded Hanami backend (API v1 of Hanami 0.4.x), see /work/shared/hanami-api.md."""

from .config import EmulatorConfig
from .server import EmulatorServer, serve

__all__ = ["EmulatorConfig", "EmulatorServer", "serve"]
