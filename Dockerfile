# accessbot: one process serving Slack, the OAuth pages, health and metrics, and running the scheduled jobs.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY accessbot_emulators ./accessbot_emulators
RUN pip install --no-cache-dir --upgrade pip && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# docker build --build-arg VERSION=<pyproject version> -t REGISTRY/rancher-access-bot:<version> . (README: Deployment)
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="rancher-access-bot" org.opencontainers.image.version="${VERSION}"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ACCESSBOT_CONFIG=/etc/accessbot/config.yaml
RUN groupadd --system --gid 10001 accessbot \
 && useradd --system --uid 10001 --gid accessbot --home-dir /var/lib/accessbot --create-home accessbot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The SQLite database (`database: /var/lib/accessbot/accessbot.db`) lives on this volume; PostgreSQL needs none.
VOLUME ["/var/lib/accessbot"]
USER 10001:10001
WORKDIR /var/lib/accessbot
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["accessbot"]
CMD ["serve", "--port", "3000"]
