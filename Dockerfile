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
# The wheel's packages ([tool.hatch.build.targets.wheel] in pyproject.toml) and the files
# its metadata needs; tests/test_compose.py keeps this list in step with pyproject.toml.
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY client ./client
COPY examples ./examples
RUN pip install .

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
