# Production image of the multi-team fork, built from the patched wheels in dist/ the way custom
# upstream images are built. Use `./breeze build-image` (docs/image.md).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
# The uv pinned in fork.toml; `./breeze build-image` passes it.
ARG UV_VERSION

ENV AIRFLOW_HOME=/opt/airflow \
    VIRTUAL_ENV=/opt/airflow-venv \
    PATH=/opt/airflow-venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Like upstream: uid 50000 with primary group root, so images also run under arbitrary uids.
RUN useradd --uid 50000 --gid 0 --create-home --home-dir /home/airflow --shell /bin/bash airflow \
 && mkdir -p "$AIRFLOW_HOME" "$VIRTUAL_ENV" \
 && chown airflow:0 "$AIRFLOW_HOME" "$VIRTUAL_ENV" \
 && chmod g+rwx "$AIRFLOW_HOME" "$VIRTUAL_ENV"

# --chown: some build backends write wheels with mode 0600.
COPY --chown=airflow:0 dist/*.whl /tmp/dist/
COPY --chown=airflow:0 constraints/constraints-3.11.txt dev/requirements/runtime.txt /tmp/
COPY --chown=airflow:0 constraints/build/install.txt /tmp/build-constraints.txt

# Numeric, so Kubernetes' runAsNonRoot can verify it (a user name cannot be checked).
USER 50000
# A venv works both on python:*-slim and on a distro Python that refuses bare pip (PEP 668). Installed
# as ./breeze installs .build/venv: the pinned uv (then removed), source builds (python-nvd3 has no
# wheel) with the pinned build backends, and bytecode compiled now, so that no process recompiles
# Airflow (PYTHONDONTWRITEBYTECODE, read-only root filesystems). uv trusts the image's certificate store,
# as pip does (a proxy's CA added to the base image works for both).
RUN test -n "$UV_VERSION" || { echo "build with ./breeze build-image (UV_VERSION unset)" >&2; exit 1; } \
 && python3 -m venv "$VIRTUAL_ENV" \
 && python3 -m venv /tmp/uv \
 && /tmp/uv/bin/pip install --no-cache-dir --quiet "uv==$UV_VERSION" \
 && UV_SYSTEM_CERTS=1 /tmp/uv/bin/uv pip install --no-cache --compile-bytecode --python "$VIRTUAL_ENV/bin/python" \
      --constraints /tmp/constraints-3.11.txt --build-constraints /tmp/build-constraints.txt \
      /tmp/dist/*.whl -r /tmp/runtime.txt \
 && rm -rf /tmp/uv

WORKDIR /opt/airflow
ENTRYPOINT ["airflow"]
CMD ["--help"]
