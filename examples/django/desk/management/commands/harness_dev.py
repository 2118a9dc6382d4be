"""`python manage.py harness_dev`: writes the development whitelist and runs `harness serve`
with it, for `runserver` in another terminal (HARNESS_KEY set to the same key in both)."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from desk.harness_dev import write_whitelist
from harness_client.testing import harness_binary


class Command(BaseCommand):
    help = "Serve the development whitelist with `harness serve` on HARNESS_URL's port."

    def handle(self, *args, **options):
        if not settings.HARNESS_KEY:
            raise CommandError("set HARNESS_KEY to the key this app will use (any hk_… string)")
        policy = write_whitelist(Path(settings.BASE_DIR) / "var", settings.HARNESS_KEY)
        listen = settings.HARNESS_URL.split("://", 1)[-1].rstrip("/")
        self.stdout.write(f"serving {policy} on {listen}")
        os.execv(harness_binary(), ["harness", "serve", "--policy", str(policy), "--listen", listen])
