# The search API (and the loader) without the transcription stack: small and CPU-only.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY api ./api
COPY mappings ./mappings
COPY samples ./samples
RUN pip install --no-cache-dir .
ENV ES_URL=http://elasticsearch:9200
EXPOSE 8000
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
