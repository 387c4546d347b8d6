"""Example agents shipped with durable-agents.

Each sub-package is an agent plugin: a module exposing ``PLUGIN = AgentPlugin(...)``
(see `activities.plugins`). ``examples.db_tuner`` is loaded by default: an agent that
finds the slow queries of a real SQLite database and speeds them up with indexes.
"""
