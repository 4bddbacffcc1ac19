# The mlwiki application image: web (gunicorn), Celery worker and beat all run from it.
FROM python:3.11-slim

# Production unless told otherwise: with DEBUG off the app refuses to start without SECRET_KEY.
ENV DEBUG=false \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 mlwiki \
    && mkdir -p /app/media && chown mlwiki /app/media
# WeasyPrint (PDF reports) renders text with Pango; DejaVu gives it fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected at build time; the key is only needed to load the settings.
RUN DEBUG=false SECRET_KEY=collectstatic-only AUDIT_HMAC_KEY=collectstatic-only \
    python manage.py collectstatic --noinput

USER mlwiki
EXPOSE 8000
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py"]
