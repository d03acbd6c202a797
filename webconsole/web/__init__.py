"""The console's pages, one module per resource, each exposing ``router``.

``ROUTER_MODULES`` is the route table's index: app.py includes these routers in this order.
"""

ROUTER_MODULES: tuple[str, ...] = (
    "health",
    "metrics",
    "auth",
    "home",
    "datasets",
    "clusters",
    "checkpoints",
    "hosts",
    "tasks",
    "results",
    "projects",
    "users",
    "account",
    "audit",
    "errorlog",
    "system",
    "direct_io",
)
