# syncer in a container: `docker build -t syncer .` on any machine that reaches PyPI and
# Debian's mirrors gives an image whose entrypoint is `syncer`, with git and ssh inside.
#
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD":/repo syncer plan
#   docker run -d --name syncer --restart unless-stopped \
#       -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD":/repo -p 8080:8080 \
#       syncer watch --listen 0.0.0.0:8080
#
# Build arguments (both optional):
#   BASE    the Python 3.11+ base image (default python:3.11-slim)
#   wheels/ in the build context: wheels of syncer and every dependency, used instead of
#           PyPI when present (`pip wheel -w wheels .` on a machine whose PyPI access the
#           build cannot share)
ARG BASE=python:3.11-slim

FROM ${BASE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md wheels* ./
COPY syncer ./syncer
RUN mkdir -p /wheels \
    && if ls ./*.whl >/dev/null 2>&1; then cp ./*.whl /wheels/; \
       else python3 -m pip wheel --no-cache-dir --wheel-dir /wheels .; fi

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/syncer/bin:$PATH
# git for GitPython (and `watch --repo URL`), ssh for ssh:// servers and git remotes
RUN if ! command -v git >/dev/null || ! command -v ssh >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=wheels /wheels /tmp/wheels
RUN python3 -m venv /opt/syncer \
    && /opt/syncer/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels syncer \
    && rm -rf /tmp/wheels
WORKDIR /repo
ENTRYPOINT ["syncer"]
CMD ["--help"]
