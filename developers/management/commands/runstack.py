"""`make run`: the web server, a Celery worker and Celery beat in one terminal.

One Ctrl-C stops all three; if any of them dies, the others are stopped too.
"""

import errno
import os
import socket
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from honcho.manager import Manager


class Command(BaseCommand):
    help = "Migrate, seed the demo world, then run gunicorn, a Celery worker and beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-seed", action="store_true", help="skip the demo world")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        _ensure_port_free(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        base_url = f"http://{host}:{port}"
        env = {**os.environ, "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", base_url)}
        if not options["no_seed"]:
            settings.PUBLIC_BASE_URL = env["PUBLIC_BASE_URL"]
            call_command("seed_demo", stdout=self.stdout)

        python = sys.executable
        manager = Manager()
        manager.add_process(
            "web",
            f"{python} -m gunicorn config.wsgi --bind {host}:{port} "
            f"--workers {options['web_workers']} --access-logfile - --graceful-timeout 5",
            env=env,
        )
        manager.add_process(
            "worker",
            f"{python} -m celery -A config worker --loglevel INFO --concurrency 2",
            env=env,
        )
        manager.add_process(
            "beat",
            f"{python} -m celery -A config beat --loglevel INFO "
            f"--schedule {settings.CELERY_BEAT_SCHEDULE_FILENAME}",
            env=env,
        )
        manager.loop()
        sys.exit(manager.returncode)


def _ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is already in use; "
                    f"stop what is using it or choose another: make run PORT={port + 1}"
                ) from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
