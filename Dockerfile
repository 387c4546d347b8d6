# syntax=docker/dockerfile:1
# The agent-worker image: the durable-agents package and its dependencies in a virtualenv,
# run as a non-root user. `docker compose` builds it for the `worker` service; the same
# image runs agentctl (`docker compose run --rm worker agentctl ...`).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project (hatchling, pyproject.toml) into /opt/venv -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The one package, durable_agents: src/durable_agents (the public API) and the layer
# folders the build hook (scripts/hatch_layers.py) maps into it, plus the files its
# metadata needs; tests/test_compose.py keeps this list in step with the hook.
COPY pyproject.toml README.md ./
COPY scripts/hatch_layers.py ./scripts/hatch_layers.py
COPY src ./src
COPY domain ./domain
COPY infra ./infra
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY client ./client
COPY cli ./cli
COPY devtools ./devtools
COPY testing ./testing
RUN pip install .
# The example agents are plugins, not part of the package: they live beside it and are
# loaded only when AGENT_PLUGINS names them (docker-compose.yml does).
COPY examples /opt/plugins/examples

# --- runtime ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AGENT_DATA_DIR=/data
RUN groupadd --system --gid 10001 agent \
    && useradd --system --uid 10001 --gid agent --create-home --home-dir /home/agent \
        --shell /usr/sbin/nologin agent \
    && install -d -o agent -g agent -m 0750 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/plugins /opt/plugins
ENV PYTHONPATH=/opt/plugins
USER agent
WORKDIR /home/agent
# Payload store, reply cache, example databases. A named volume mounted here starts as a
# copy of this directory, owned by `agent`.
VOLUME ["/data"]
# Prometheus metrics, when AGENT_METRICS_PORT is set (and AGENT_METRICS_HOST=0.0.0.0, as
# docker-compose.yml does: the worker binds 127.0.0.1 by default).
EXPOSE 9464
# agent-worker stops polling on SIGTERM and lets running activities finish
# (workers/main.py); give it time with `docker stop -t` / compose's stop_grace_period.
STOPSIGNAL SIGTERM
CMD ["agent-worker"]
