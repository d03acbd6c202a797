"""Clusters: list, create from a template, detail (pages), what the console remembers of them (memory), the template's brick layout, checkpoints and hosts."""
