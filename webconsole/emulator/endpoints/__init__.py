"""Endpoint implementations; importing this package registers every route in core.ROUTES."""

from . import clusters, datasets, logs, projects, results, system, tasks, users  # noqa: F401
