# supernas service image (CPU). Build: docker compose build
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY supernas ./supernas
COPY service ./service
COPY search_spaces ./search_spaces
COPY surrogates ./surrogates
COPY workers ./workers
COPY examples ./examples
RUN pip install --no-cache-dir .
ENV SUPERNAS_DATA_DIR=/data
EXPOSE 8000
CMD ["supernas", "serve", "--host", "0.0.0.0", "--port", "8000"]
