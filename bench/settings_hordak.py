"""The project's settings plus django-hordak, on a database of its own
(`<benchmark database>_hordak`). Used only from .venv-bench, the one virtualenv that
has hordak installed."""

import os

from config.settings import *  # noqa: F403
from config.settings import DATABASES, INSTALLED_APPS

# hordak's installation guide: django-mptt for the account tree, then hordak.
INSTALLED_APPS = [*INSTALLED_APPS, "mptt", "hordak"]
# BENCH_HORDAK_DB names another database: the template the section copies from.
NAME = os.environ.get("BENCH_HORDAK_DB") or f"{DATABASES['default']['NAME']}_hordak"
DATABASES = {"default": {**DATABASES["default"], "NAME": NAME}}
DEFAULT_CURRENCY = "USD"
HORDAK_CURRENCIES = ["USD"]
