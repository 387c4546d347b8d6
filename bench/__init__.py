"""Benchmarks of durable-agents, measured against floors taken in the same run."""
