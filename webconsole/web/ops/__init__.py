"""Endpoints for operators and their tools: health and readiness probes, Prometheus metrics."""
