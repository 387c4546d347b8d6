"""Example agents shipped with durable-agents (not part of the installed package).

Each sub-package is an agent plugin: a module exposing ``PLUGIN = AgentPlugin(...)``.
Workers load only the plugins ``AGENT_PLUGINS`` names; ``make demo``, ``make worker`` and
docker-compose.yml name ``examples.db_tuner`` (finds the slow queries of a real SQLite
database and speeds them up with indexes) and ``examples.file_editor`` (edits files in a
sandboxed workspace, undoably). ``examples.refunds`` is the agent of docs/guide.md.
"""
