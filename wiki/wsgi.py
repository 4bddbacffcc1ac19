"""WSGI entry point, used by gunicorn (deploy/gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")

application = get_wsgi_application()
