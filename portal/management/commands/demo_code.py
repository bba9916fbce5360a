"""`manage.py demo_code`: the demo supervisor's current one-time code (DEBUG only).

The demo's authenticator key is published (portal/management/commands/seed_demo.py), so this
prints what an authenticator app would show, for people trying the staff console.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.management.commands.seed_demo import DEMO_ADMIN_USERNAME, DEMO_TOTP_KEY


class Command(BaseCommand):
    help = "Print the demo supervisor's current one-time code (demo only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo_code runs only in the demo (DEBUG on).")
        device = TOTPDevice.objects.filter(
            user__username=DEMO_ADMIN_USERNAME, key=DEMO_TOTP_KEY
        ).first()
        if device is None:
            raise CommandError("No demo supervisor: run `make run` (or seed_demo) first.")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        token = totp.token()
        self.stdout.write(f"{token:0{device.digits}d}")
