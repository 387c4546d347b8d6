"""The db-tuner agent: speeds up a real SQLite database with indexes, measuring as it goes.

It reads the schema and ``slow_query_log``, explains and times each slow query, creates
the missing indexes, re-measures, and proposes dropping an index no query uses (a person
approves each drop). Build its database with ``python -m examples.db_tuner.data``.

``PLUGIN`` is what workers and the client load (see `activities.plugins`).
"""

from durable_agents import AgentPlugin
from examples.db_tuner.checks import STATE_CHECKS
from examples.db_tuner.offline import offline_policy
from examples.db_tuner.spec import build_spec
from examples.db_tuner.tools import TOOLS

PLUGIN = AgentPlugin(
    name="db-tuner",
    build_spec=build_spec,
    tools=TOOLS,
    offline_policy=offline_policy,
    state_checks=STATE_CHECKS,
)

__all__ = ["PLUGIN"]
