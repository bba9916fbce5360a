"""`manage.py seed_demo`: a demo district for `make run` — a synthetic OneRoster import plus logins.

The demo logins have passwords printed on the terminal and written in this file. They exist so
that someone can try the portal at once; the command refuses to run outside DEBUG (settings.dev)
unless forced, and must never be run against a real district's database.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal.models import Guardian, GuardianStudent, Student

DEMO_ADMIN_USERNAME = "admin"
# The demo supervisor's authenticator key, published like the passwords (demo only): the staff
# console asks for a code, and `manage.py demo_code` prints the current one.
DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"
# Demo only: published on purpose. Long enough for the password policy of SPEC §6.3.
DEMO_PASSWORDS = {
    "staff": "demo-admin-password",
    "parent": "demo-parent-password",
    "student": "demo-student-password",
}
DEMO_STUDENTS = 300


def demo_guardian():
    """The guardian the demo parent login belongs to: the first (by SIS id) a real night would
    provision — unique email, enabled, a parent or guardian, with an active student."""
    active_child = GuardianStudent.objects.filter(
        guardian=OuterRef("pk"),
        student__active=True,
        student__enabled=True,
        student__birth_date__isnull=False,
    ).exclude(student__student_number="")
    return (
        Guardian.objects.filter(
            Exists(active_child),
            active=True,
            enabled=True,
            email_shared=False,
            role__in=[Guardian.Role.PARENT, Guardian.Role.GUARDIAN],
        )
        .exclude(email="")
        .exclude(username="")
        .order_by("sourced_id")
        .first()
    )


def demo_student(guardian):
    """The demo student: the demo parent's first child (by SIS id) with a student number."""
    if guardian is None:
        return None
    return (
        Student.objects.filter(
            links__guardian=guardian, active=True, enabled=True, birth_date__isnull=False
        )
        .exclude(student_number="")
        .order_by("sourced_id")
        .first()
    )


def _demo_accounts():
    """(role, user or None) for the three demo logins, whether or not they exist yet."""
    User = get_user_model()
    guardian = demo_guardian()
    student = demo_student(guardian)
    return [
        ("staff", User.objects.filter(username=DEMO_ADMIN_USERNAME).first()),
        ("parent", User.objects.filter(guardian=guardian).first() if guardian else None),
        ("student", User.objects.filter(student=student).first() if student else None),
    ]


def demo_logins():
    """[(role, username, password)] for the demo accounts that exist with their demo password."""
    return [
        (role, user.get_username(), DEMO_PASSWORDS[role])
        for role, user in _demo_accounts()
        if user is not None and user.check_password(DEMO_PASSWORDS[role])
    ]


def _give_demo_second_factor(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from recovery.models import StaffProfile

    StaffProfile.objects.get_or_create(user=user, defaults={"is_supervisor": True})
    TOTPDevice.objects.create(user=user, name="authenticator", key=DEMO_TOTP_KEY, confirmed=True)


@transaction.atomic
def create_demo_accounts():
    """Create whichever demo logins are missing; return the roles created."""
    User = get_user_model()
    now = timezone.now()
    created = []
    if not User.objects.filter(username=DEMO_ADMIN_USERNAME).exists():
        User.objects.create_superuser(
            DEMO_ADMIN_USERNAME,
            email="",
            password=DEMO_PASSWORDS["staff"],
            role=User.Role.STAFF,
            first_name="Demo",
            last_name="Administrator",
            activated_at=now,
        )
        _give_demo_second_factor(User.objects.get(username=DEMO_ADMIN_USERNAME))
        created.append("staff")
    guardian = demo_guardian()
    if guardian is not None and not User.objects.filter(guardian=guardian).exists():
        # An activated parent: activation by the emailed link verifies the address (SPEC §2.2).
        User.objects.create_user(
            guardian.username,
            password=DEMO_PASSWORDS["parent"],
            role=User.Role.PARENT,
            guardian=guardian,
            first_name=guardian.preferred_given_name or guardian.given_name,
            last_name=guardian.family_name,
            recovery_email=guardian.email,
            recovery_email_normalised=guardian.email_normalised,
            recovery_email_verified_at=now,
            provisioned_at=now,
            welcome_sent_to=guardian.email,
            activated_at=now,
        )
        created.append("parent")
    student = demo_student(guardian)
    if student is not None and not User.objects.filter(student=student).exists():
        # Username = student number (SPEC §2.5). Self Serve is not set up: the student has to
        # do it while logged in, as a real one would.
        User.objects.create_user(
            student.student_number,
            password=DEMO_PASSWORDS["student"],
            role=User.Role.STUDENT,
            student=student,
            first_name=student.preferred_given_name or student.given_name,
            last_name=student.family_name,
            provisioned_at=now,
            activated_at=now,
        )
        created.append("student")
    return created


class Command(BaseCommand):
    help = (
        "Seed a demo district: write a synthetic OneRoster set into var/demo-roster/, import it, "
        "and create demo logins with published passwords. DEBUG (settings.dev) only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--students",
            type=int,
            default=DEMO_STUDENTS,
            help=f"how many students the demo district has (default {DEMO_STUDENTS})",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run even though DEBUG is off (never on a real district's database)",
        )

    def handle(self, *args, students, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates logins with published passwords, so it runs only with "
                "DEBUG on (settings.dev). Use --force only on a throw-away database."
            )
        if students < 1:
            raise CommandError("--students must be at least 1.")
        imported = self._import_roster(students=students)
        created = create_demo_accounts()
        if imported:
            # The nightly job, as a district would run it: parent and student accounts, and
            # welcome emails that the demo's worker delivers to /dev/mail/.
            from portal.provisioning import provision_accounts

            provision_accounts()
        if not imported and not created:
            self.stdout.write("Demo data already present; nothing to do.")
        elif created:
            self.stdout.write(f"Created demo logins: {', '.join(created)}.")
        self._print_logins()

    def _import_roster(self, *, students):
        if Student.objects.exists():
            self.stdout.write("The roster is already loaded; not importing the demo roster.")
            return False
        from portal.roster.importer import import_roster
        from portal.roster.synthetic import write_roster

        folder = write_roster(settings.VAR_DIR / "demo-roster", students=students, seed=1)
        self.stdout.write(f"Wrote a demo OneRoster set for {students} students to {folder}.")
        summary = import_roster(folder)
        lines = summary.lines() if hasattr(summary, "lines") else [str(summary)]
        for line in lines:
            self.stdout.write(line)
        return True

    def _print_logins(self):
        logins = demo_logins()
        if not logins:
            self.stdout.write("No demo logins.")
            return
        self.stdout.write("Demo logins (demo only — these passwords are published):")
        labels = {"staff": "staff (admin)", "parent": "parent", "student": "student"}
        for role, username, password in logins:
            self.stdout.write(f"  {labels[role]:<14} {username:<28} {password}")
