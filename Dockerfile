# One image for every Switchboard service; the command picks the service:
#   docker run switchboard serve gateway|orchestrator|reasoning|llm
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY runtime runtime
COPY gateway gateway
COPY services services
COPY gen gen
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    SWITCHBOARD_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["switchboard"]
CMD ["serve", "gateway"]
