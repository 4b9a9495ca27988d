# The lfr-cluster image: `lfr` (control room, live run, database upgrades) and the Ray nodes of the
# Helm chart (helm/lfr-cluster). CPU torch wheels; the GPU worker group of the chart can use the same
# image on nodes with NVIDIA's container runtime only if TORCH_INDEX names a CUDA wheel index.
#   docker build -t lfr-cluster:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/lfr
ENV PATH=/opt/lfr/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cluster ./cluster
COPY actors ./actors
COPY loadtest ./loadtest
# torch and torchvision are pinned in pyproject.toml; the extra index serves their CPU builds (2.14.1+cpu
# satisfies ==2.14.1). facenet-pytorch pins an old torch, so it goes in without its dependencies (README.md).
RUN pip install --extra-index-url "${TORCH_INDEX}" . \
    && pip install --no-deps facenet-pytorch==2.6.0

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="lfr-cluster" \
      org.opencontainers.image.version="0.1.0"
# A fixed non-root user: the chart's securityContext runs as 10001 and refuses root.
RUN groupadd --gid 10001 lfr \
    && useradd --uid 10001 --gid lfr --home-dir /home/lfr --create-home --shell /usr/sbin/nologin lfr
COPY --from=build /opt/lfr /opt/lfr
ENV PATH=/opt/lfr/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LFR_HOME=/var/lib/lfr
RUN install -d -o lfr -g lfr -m 0700 /var/lib/lfr
USER 10001:10001
WORKDIR /home/lfr
EXPOSE 8600
ENTRYPOINT ["lfr"]
CMD ["--help"]
