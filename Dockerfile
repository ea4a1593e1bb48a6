# dsmath_jax in a container, CPU or NVIDIA GPU; the install lines are the README's (a test checks).
#
#   docker build --target cpu  -t dsmath_jax:cpu .
#   docker build --target cuda -t dsmath_jax:cuda .
#   docker run --rm -v $PWD/runs:/runs dsmath_jax:cpu --config=configs/quickstart.py --workdir=/runs/quickstart
#   docker run --rm --gpus all -v $PWD/runs:/runs dsmath_jax:cuda --config=configs/sft.py:tiny --workdir=/runs/sft
#
# The CUDA image needs no CUDA base image: jax[cuda12] brings the CUDA libraries as pip wheels;
# the host provides the driver (NVIDIA Container Toolkit, `--gpus all`).
FROM python:3.11-slim AS base
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /dsmath_jax
COPY . .

FROM base AS cpu
RUN pip install --no-cache-dir -c constraints.txt -e ".[corpus]"
ENTRYPOINT ["python", "-m", "dsmath_jax.main"]

FROM base AS cuda
RUN pip install --no-cache-dir -c constraints.txt -e ".[corpus]" "jax[cuda12]"
ENV XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
ENTRYPOINT ["python", "-m", "dsmath_jax.main"]
