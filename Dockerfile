# supernas image (CPU). One image for every role of docker-compose.yml: the API (`supernas serve`),
# the Ray head and the Ray workers (`ray start ...`): a Ray cluster needs the same Ray and Python
# versions on all of its nodes, and the workers import this package to run trials.
# Build: docker compose build
FROM python:3.11-slim
WORKDIR /app
# Fashion-MNIST for the built-in fashion_mnist task (read by the Ray workers; never downloaded)
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*
# torch first, from the CPU index, so that `pip install .` finds it and pulls no CUDA build
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY supernas ./supernas
COPY service ./service
COPY search_spaces ./search_spaces
COPY surrogates ./surrogates
COPY workers ./workers
COPY examples ./examples
# Ray comes from pyproject.toml's pin (ray[tune]==...); fail the build if anything changed it
RUN pip install --no-cache-dir . \
    && python -c "import tomllib, ray; \
pin = next(d.split('==')[1] for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'] if d.startswith('ray[')); \
assert ray.__version__ == pin, f'image has Ray {ray.__version__}, pyproject.toml pins {pin}'"
ENV SUPERNAS_DATA_DIR=/data \
    RAY_USAGE_STATS_ENABLED=0
EXPOSE 8000
CMD ["supernas", "serve", "--host", "0.0.0.0", "--port", "8000"]
