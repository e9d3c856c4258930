# syncer in a container.
#
# Build the wheels on the HOST first -- pip inside a container cannot use the package
# registries here, because their TLS certificate is not trusted inside containers:
#
#     .venv/bin/pip wheel -w wheels .          # syncer + all its dependencies
#     docker build -t syncer .
#
# The install is offline (--no-index) and takes syncer from its wheel in wheels/, not from
# the source tree: building from source would need setuptools, which `pip wheel .` does not
# put into wheels/, so `pip install --no-index --find-links wheels .` fails.
#
# Run it against the host's engine, e.g.
#     docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD":/repo -w /repo syncer plan
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# GitPython needs the git binary (Debian's apt sources are plain http, no TLS involved).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

COPY wheels/ /tmp/wheels/
RUN pip install --no-index --find-links /tmp/wheels syncer \
    && rm -rf /tmp/wheels

WORKDIR /repo
ENTRYPOINT ["syncer"]
CMD ["--help"]
