"""Example agents shipped with durable-agents.

Each sub-package is an agent plugin: a module exposing ``PLUGIN = AgentPlugin(...)``
(see `activities.plugins`). Both are loaded by default: ``examples.db_tuner`` finds the
slow queries of a real SQLite database and speeds them up with indexes;
``examples.file_editor`` edits files inside a sandboxed workspace, undoably.
"""
