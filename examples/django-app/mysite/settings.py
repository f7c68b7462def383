"""Settings of a Heroku-style Django app: everything that differs per host comes from the
environment (DATABASE_URL, SECRET_KEY...), static files are served by WhiteNoise."""

import os
import urllib.parse
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("SECRET_KEY", "only-for-the-example")
DEBUG = os.environ.get("DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = ["django.contrib.staticfiles", "django.contrib.contenttypes", "notes"]
MIDDLEWARE = ["whitenoise.middleware.WhiteNoiseMiddleware"]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]


def database(url):
    """DATABASE_URL (sqlite:////path or postgresql://user:pw@host/db) as Django's setting."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.path}
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parsed.path.lstrip("/"),
            "USER": parsed.username, "PASSWORD": parsed.password, "HOST": parsed.hostname,
            "PORT": parsed.port or ""}


DATA = os.environ.get("CORPUS_DATA", str(BASE_DIR))
DATABASES = {"default": database(os.environ.get("DATABASE_URL") or "sqlite:///{}/db.sqlite3".format(DATA))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {"staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
USE_TZ = True
