"""`manage.py createstaff USERNAME --email EMAIL [--supervisor] [--school SOURCEDID ...]`

Creates a support-staff account (role staff, is_staff, not a superuser), its StaffProfile and a
confirmed TOTP authenticator, and prints, once, what to hand over: the otpauth:// URI, the same
as a QR code for the terminal, and ten single-use backup codes (stored only as keyed hashes:
recovery.staff.otp). The password comes from the STAFF_PASSWORD environment variable or, when
that is unset, a prompt (typed twice); the project's password validators apply.
A supervisor sees every school; other staff see the schools given with --school (SIS sourcedIds).
"""

import getpass
import io
import os
import sys

import segno
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.models import Organisation
from portal.passwords import normalise_password
from recovery.audit import record_event
from recovery.models import StaffProfile
from recovery.staff import otp


class Command(BaseCommand):
    help = "Create a staff account with an authenticator and backup codes (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", required=True, help="The staff member's own address.")
        parser.add_argument(
            "--supervisor", action="store_true", help="Sees every school; manages the team."
        )
        parser.add_argument(
            "--school",
            action="append",
            default=[],
            metavar="SOURCEDID",
            help="A school this staff member works for (repeat for several).",
        )

    def handle(self, *args, username, email, supervisor, school, **options):
        User = get_user_model()
        username = username.strip()
        if not username:
            raise CommandError("A username is required.")
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"The username {username!r} is taken.")
        email = email.strip()
        if "@" not in email:
            raise CommandError("--email must be an email address.")
        schools = self._schools(school)
        user = User(
            username=username,
            email=email,
            role=User.Role.STAFF,
            is_staff=True,
        )
        password = self._password(user)
        with transaction.atomic():
            user.set_password(normalise_password(password))
            user.save()
            profile = StaffProfile.objects.create(user=user, is_supervisor=supervisor)
            profile.schools.set(schools)
            issued = otp.issue_authenticator(user=user, confirmed=True)
            record_event(
                action="staff.created",
                subject=user,
                detail={"supervisor": supervisor, "schools": [s.sourced_id for s in schools]},
            )
        self._print_handover(user, issued)

    def _schools(self, sourced_ids):
        schools = list(Organisation.objects.filter(sourced_id__in=sourced_ids))
        missing = sorted(set(sourced_ids) - {s.sourced_id for s in schools})
        if missing:
            raise CommandError(f"No organisation with sourcedId {', '.join(missing)}.")
        return schools

    def _password(self, user):
        password = os.environ.get("STAFF_PASSWORD")
        if password is None:
            if not sys.stdin.isatty():
                raise CommandError("Set STAFF_PASSWORD, or run this in a terminal to be asked.")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
        try:
            validate_password(normalise_password(password), user)
        except ValidationError as error:
            raise CommandError("Password refused: " + " ".join(error.messages)) from None
        return password

    def _print_handover(self, user, issued):
        write = self.stdout.write
        write(self.style.SUCCESS(f"Created staff account {user.get_username()}."))
        write("")
        write("Shown once. Scan the QR code with an authenticator app, or enter this address:")
        write(issued.config_url)
        write("")
        qr = segno.make(issued.config_url, error="m")
        block = io.StringIO()
        qr.terminal(out=block, compact=True)
        write(block.getvalue().rstrip("\n"))
        write("")
        write("Backup codes (each works once instead of an app code; keep them on paper):")
        for code in issued.backup_codes:
            write(f"  {otp.format_backup_code(code)}")
