"""What users touch: the Python API, the agentctl CLI, the dev-server manager."""
