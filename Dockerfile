# cronwell container image: the HTTP API and engine in one process.
# Configuration comes only from the environment (see README "Configuration").

# Both stages start from BASE_IMAGE: the official Python image by default; make
# image-test passes a Debian bookworm base it makes itself (Debian's python3 is
# externally managed, hence the virtual environments below, which work on either).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY engine engine
COPY api api
COPY runners runners
COPY stores stores
COPY jobs jobs
# Wheels with every dependency, so the runtime stage needs no compiler or pip cache.
RUN python3 -m venv /opt/build-venv \
    && /opt/build-venv/bin/pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE_IMAGE}
# Two users, so that no script can read the service's data: the service's (`cronwell`,
# owns /data, mode 0700) and the scripts' (`cronwell-jobs`, CRONWELL_RUN_AS below). The
# container starts as root only for its entrypoint, which runs the service as cronwell
# with just the capabilities that starting scripts as cronwell-jobs takes (see
# docker/entrypoint.sh and README "Container"). setpriv (util-linux) is what it uses.
RUN command -v setpriv \
    && groupadd --system cronwell \
    && useradd --system --gid cronwell --home-dir /data --shell /usr/sbin/nologin cronwell \
    && groupadd --system cronwell-jobs \
    && useradd --system --gid cronwell-jobs --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cronwell-jobs \
    && mkdir -p /data /scripts \
    && chown cronwell:cronwell /data \
    && chmod 0700 /data
COPY --from=build /wheels /wheels
COPY docker/entrypoint.sh /usr/local/bin/cronwell-entrypoint
RUN python3 -m venv /opt/cronwell \
    && /opt/cronwell/bin/pip install --no-cache-dir --no-index --find-links /wheels cronwell \
    && rm -rf /wheels

# No API key here: the image binds 0.0.0.0, and with no key cronwell refuses to (open
# mode would make anyone reaching the port an admin). Pass CRONWELL_API_KEYS at run
# time (compose.yaml requires it), or `serve --allow-open` on a network you trust.
# No CRONWELL_STORE here: left unset, MONGO_URI or CRONWELL_ORACLE_DSN select their
# store as they do outside a container; with neither, the default SQLite file is
# var/cronwell.db under WORKDIR, i.e. /data/var/cronwell.db in the data volume.
ENV PATH=/opt/cronwell/bin:$PATH \
    CRONWELL_HOST=0.0.0.0 \
    CRONWELL_PORT=5000 \
    CRONWELL_DATA_DIR=/data \
    CRONWELL_SCRIPT_ROOTS=/scripts \
    CRONWELL_SHUTDOWN_TIMEOUT=20 \
    CRONWELL_RUN_AS=cronwell-jobs \
    PYTHONUNBUFFERED=1

# root, for the entrypoint only: the service itself runs as cronwell (see above)
USER root
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5000

# slim has no curl: ask the scripts surface's health endpoint with the stdlib.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('CRONWELL_PORT', '5000'), timeout=4)"]

# Docker sends SIGTERM on stop; cronwell stops firing, lets running executions finish
# for CRONWELL_SHUTDOWN_TIMEOUT seconds, then cancels and records the rest. Give it
# longer than that (docker stop -t 30, or stop_grace_period in compose.yaml).
STOPSIGNAL SIGTERM
ENTRYPOINT ["cronwell-entrypoint"]
CMD ["serve"]
