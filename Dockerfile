# The search API, the loader and the Kibana importer, without the transcription stack: small and
# CPU-only. compose.yaml runs it as the api, load-samples and kibana-import services.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY api ./api
RUN pip install --no-cache-dir .
COPY mappings ./mappings
COPY samples ./samples
COPY kibana ./kibana
COPY scripts/kibana-import ./scripts/
# Run from the checkout's layout (PROJECT_ROOT = /app), so mappings/ and samples/ are found.
ENV PYTHONPATH=/app \
    ES_URL=http://elasticsearch:9200 \
    EARSHOT_STORE_DIR=/data/store
RUN useradd --system --create-home --uid 10001 earshot \
    && mkdir -p /data/store && chown earshot /data/store
USER earshot
EXPOSE 8000
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
