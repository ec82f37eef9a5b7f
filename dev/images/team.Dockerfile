# A team's image: the fork's image plus the team's requirements, under the fork's constraints. Use
# `./breeze build-image --team T --requirements FILE` (docs/image.md), which checks the requirements
# against Airflow's pins first and writes the build context: this file, the team's requirements and the
# pins of the fork's own distributions (so that pip never replaces them with PyPI's).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY --chown=airflow:0 team-requirements.txt fork-pins.txt /tmp/
# pip trusts the image's certificate store (as the fork's image's uv does).
RUN PIP_CERT=/etc/ssl/certs/ca-certificates.crt pip install --no-cache-dir \
      --constraint /tmp/constraints-3.11.txt --constraint /tmp/fork-pins.txt -r /tmp/team-requirements.txt
