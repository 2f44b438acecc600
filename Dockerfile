# One image for the api and the worker; it installs exactly as `make setup` does.
FROM python:3.11-slim-bookworm

RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends ffmpeg espeak-ng make curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml Makefile README.md ./
COPY service ./service
COPY pipelines ./pipelines
COPY recordings/README.md ./recordings/README.md
COPY transcripts/README.md ./transcripts/README.md

# In a container the index's torch 2.13.0 CPU wheel comes from the PyTorch CPU index. The
# GPU worker (docker-compose.yml, profile gpu) builds with a CUDA index here instead; its
# torch wheel brings the CUDA libraries, and CTranslate2's PyPI wheel has CUDA built in.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL} \
    PYANNOTE_METRICS_ENABLED=0 \
    SOURCEBOOK_MODELS_DIR=/app/models \
    SOURCEBOOK_RECORDINGS_DIR=/data/recordings \
    SOURCEBOOK_TRANSCRIPTS_DIR=/data/transcripts \
    SOURCEBOOK_DATA_DIR=/data/state \
    SOURCEBOOK_HOST=0.0.0.0

# `models` builds .venv and assembles the weights; the system packages it needs are
# installed above (setup's system-deps would add the browser-test Chromium too).
RUN make PYTHON=python3.11 models

ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8000
CMD ["sourcebook", "serve"]
