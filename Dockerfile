# stocksync daemon image: `docker build -t stocksync .`
# Run: docker run -v $PWD/stocksync.toml:/etc/stocksync/stocksync.toml:ro -v stocksync-data:/var/lib/stocksync stocksync

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sync ./sync
COPY migrations ./migrations
COPY config ./config
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/stocksync --create-home stocksync
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config /app/config
ENV STOCKSYNC_CONFIG=/etc/stocksync/stocksync.toml \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /var/lib/stocksync
# The ledger (SQLite by default) lives in the working directory: mount a volume there.
VOLUME ["/var/lib/stocksync"]
# Asks the daemon's /readyz when [health] port is set, else checks that the ledger answers.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s CMD ["stocksync", "healthcheck"]
# Migrations are applied at start-up, then the daemon runs until SIGTERM.
ENTRYPOINT ["stocksync"]
CMD ["run", "--upgrade-db"]
