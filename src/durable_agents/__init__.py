"""durable-agents."""
