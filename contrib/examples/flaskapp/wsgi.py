"""WSGI entry point: `module = wsgi:app` in uwsgi.ini."""
from app import create_app

app = create_app()
