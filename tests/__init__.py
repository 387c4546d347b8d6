"""durable-agents test suite."""
