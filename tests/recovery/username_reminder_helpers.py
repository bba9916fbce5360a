"""Accounts and page helpers shared by the forgot-username tests."""

import re
from datetime import date, timedelta

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from portal.models import Guardian, GuardianStudent, Student
from portal.normalisation import normalise_email
from recovery.ratelimit import KEY_PREFIX

FORM = "/help/forgot-username/"
SENT = "/help/forgot-username/sent/"
PASSWORD = "violet kettle marches under quiet harbours"

SHARED = "family.garcia@example.org"  # two accounts' verified recovery email
NEW_PARENT = "new.parent@example.org"  # a provisioned parent's SIS email, not yet activated
DISABLED = "gone.parent@example.org"
STAFF = "helpdesk@example.org"
NO_SELF_SERVE = "pending.parent@example.org"  # an activated parent without a verified address
STUDENT_NUMBER = "20230417"
STUDENT_BIRTH = date(2012, 3, 9)
STUDENT_NAMES = ("Ana", "Garcia")

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def clear_rate_limits():
    """Forget every rate-limit counter in this run's Redis database (ours alone)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{KEY_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _user(username, *, role="parent", **fields):
    return get_user_model().objects.create_user(
        username=username, password=PASSWORD, role=role, **fields
    )


def _guardian(sourced_id, email, **fields):
    return Guardian.objects.create(
        sourced_id=sourced_id,
        given_name="Rosa",
        family_name="Garcia",
        email=email,
        email_normalised=normalise_email(email),
        role=Guardian.Role.PARENT,
        **fields,
    )


def with_recovery_email(user, address, *, verified=True):
    user.recovery_email = address
    user.recovery_email_normalised = normalise_email(address)
    user.recovery_email_verified_at = timezone.now() - timedelta(days=3) if verified else None
    user.activated_at = user.activated_at or timezone.now() - timedelta(days=10)
    user.save()
    return user


def make_accounts():
    """Every kind of account the forgot-username flow must tell apart (but never show)."""
    now = timezone.now()
    student = Student.objects.create(
        sourced_id="st-ana",
        student_number=STUDENT_NUMBER,
        given_name=STUDENT_NAMES[0],
        family_name=STUDENT_NAMES[1],
        birth_date=STUDENT_BIRTH,
        grade="08",
        email="ana.g@students.example.org",
        email_normalised="ana.g@students.example.org",
    )
    parent_guardian = _guardian("g-rosa", "rosa.sis@example.org")
    GuardianStudent.objects.create(guardian=parent_guardian, student=student)
    accounts = {
        "parent": with_recovery_email(
            _user("rosa.garcia", guardian=parent_guardian, activated_at=now), SHARED
        ),
        "student": with_recovery_email(
            _user(STUDENT_NUMBER, role="student", student=student), SHARED
        ),
    }
    new_guardian = _guardian("g-new", NEW_PARENT)
    accounts["new_parent"] = _user(
        "luis.ortega", guardian=new_guardian, email=NEW_PARENT, welcome_sent_to=NEW_PARENT
    )
    accounts["new_parent"].set_unusable_password()
    accounts["new_parent"].save()
    accounts["disabled"] = with_recovery_email(
        _user("old.parent", is_active=False, guardian=_guardian("g-old", "old.sis@example.org")),
        DISABLED,
    )
    accounts["staff"] = with_recovery_email(
        _user("help.desk", role="staff", is_staff=True, email=STAFF), STAFF
    )
    accounts["no_self_serve"] = with_recovery_email(
        _user("pat.lee", activated_at=now, guardian=_guardian("g-pat", "pat.sis@example.org")),
        NO_SELF_SERVE,
        verified=False,
    )
    return accounts


def signature(email, *, remote_addr="192.0.2.10"):
    """What a browser could observe of one forgot-username POST: status, Location, header
    names, cookie names, and the page it lands on, CSRF token blanked (checklist A1)."""
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=remote_addr)
    form = client.get(FORM)
    token = client.cookies["csrftoken"].value
    response = client.post(FORM, {"email": email, "csrfmiddlewaretoken": token})
    landed = client.get(response["Location"]) if response.status_code in (302, 303) else response
    return (
        response.status_code,
        response.get("Location"),
        tuple(sorted(name.lower() for name in response.headers)),
        tuple(sorted(response.cookies)),
        tuple(sorted((name, morsel["path"]) for name, morsel in response.cookies.items())),
        landed.status_code,
        blank_csrf(landed.content.decode()),
        form.status_code,
    )


def blank_csrf(html):
    return _CSRF.sub('name="csrfmiddlewaretoken" value=""', html)
