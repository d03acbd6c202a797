"""The console's pages: one subpackage per feature family, the plumbing they share in ``core``.

``routes`` is the route table: every router, in the order ``create_app`` includes them.
"""
