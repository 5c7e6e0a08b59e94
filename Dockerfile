# framequeue on the CPU:  docker build -t docker.io/local/framequeue:0.1.0 .
# Models: mount a model repository at /models (FQ_MODEL_REPO), or bake one in with
#   docker build --build-arg MODELS_DIR=path/in/the/context -t ... .
# The offline builder (python -m tools.image.build) makes the same image without a Docker engine;
# tools/image/recipe.py holds what the two share and tests/unit/test_image_recipe.py keeps them in step.

# --- builder: a wheel of the working tree, installed with its dependencies into a venv -------------------
FROM debian:bookworm-slim AS builder
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
ARG EXTRAS=cpu,postgres,redis,rabbitmq,nats,s3,serve,openvino,tflite
WORKDIR /src
COPY . /src
# constraints.txt (when the tree has one) pins the exact versions CI tests
RUN python3 -m venv /opt/framequeue/venv \
    && /opt/framequeue/venv/bin/pip wheel --no-deps --wheel-dir /dist . \
    && /opt/framequeue/venv/bin/pip install $(test -f constraints.txt && echo --constraint constraints.txt) \
        "$(ls /dist/framequeue-*.whl)[${EXTRAS}]"

# --- models: MODELS_DIR's contents, or nothing (pyproject.toml only makes COPY valid when it is empty) ----
FROM debian:bookworm-slim AS models
ARG MODELS_DIR=
COPY pyproject.toml ${MODELS_DIR} /models/
RUN rm /models/pyproject.toml

# --- runtime ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
    && groupadd --gid 10001 framequeue \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/framequeue --create-home --shell /usr/sbin/nologin framequeue
COPY --from=builder /opt/framequeue/venv /opt/framequeue/venv
COPY --from=models /models /models
ENV PATH=/opt/framequeue/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/framequeue/venv \
    FQ_HOME=/var/lib/framequeue \
    FQ_MODEL_REPO=/models \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8
WORKDIR /var/lib/framequeue
USER 10001:10001
ENTRYPOINT ["framequeue"]
CMD ["--help"]
