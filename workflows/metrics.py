"""Workflow-side metrics through Temporal's replay-safe meter (nothing counts twice when a
workflow task replays). They come out of the worker's Prometheus endpoint with the rest."""

from temporalio import workflow


def count(name: str, description: str, **labels: str) -> None:
    """Add one to a counter, labelled."""
    workflow.metric_meter().create_counter(name, description).add(1, labels)
