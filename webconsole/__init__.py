"""Hanami Web Console: a browser console for the Hanami AI backend, with an embedded backend."""

__version__ = "0.1.0"
