# The signhub image: the hub (`signhub run`, the default) and the simulators (`signhub simulate`).
# Built from the repository root; .dockerignore keeps tests, caches and local data out.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed non-root user; /data (the store) and /files (the file area) are created here, owned by
# it, so fresh named volumes mounted there inherit that ownership.
RUN useradd --create-home --uid 10001 --user-group signhub \
    && mkdir -p /data /files \
    && chown signhub:signhub /data /files

WORKDIR /src
COPY . .
RUN pip install . && rm -rf /src

WORKDIR /home/signhub
USER signhub

# The hub's HTTP endpoints (health, metrics, operator console).
EXPOSE 8080

CMD ["signhub", "run"]
