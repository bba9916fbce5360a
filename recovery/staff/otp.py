"""The staff second factor: a TOTP authenticator (django-otp) and single-use backup codes.

- One TOTPDevice per staff member, issued by `createstaff` (confirmed) or by a supervisor's
  re-issue (unconfirmed until its first correct code on the code page). Issuing deletes every
  older device, so a lost phone stops working at once and its verified sessions lose their
  second factor (django-otp finds no device for the session's device id).
- Codes: django-otp's TOTP check (30 s steps, its tolerance, replay refused: a code at or before
  the last accepted step is refused). Wrong codes are throttled on the TOTP device
  (ThrottlingMixin: 1, 2, 4 ... seconds, doubling up to an hour); while throttled nothing is
  checked at all, not even a correct code or a backup code.
- Backup codes: django-otp's StaticToken keeps tokens in clear and compares them as typed. We
  store instead, in its 16-character `token` field, a keyed hash (HMAC-SHA256 under SECRET_KEY,
  salted per user, 80 bits kept) of each code, and verify by hashing what was typed. The raw
  StaticDevice.verify_token path is never used (the admin login form, which would use it, is
  replaced by the staff sign-in), so a leaked hash cannot be typed in as a code. The codes
  themselves are shown once, when issued.
"""

import base64
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils.crypto import get_random_string, salted_hmac
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

BACKUP_CODE_COUNT = 10
BACKUP_CODE_LENGTH = 10  # about 49 bits each; one use each
# No look-alikes (0/o, 1/l/i): the codes are read off paper.
BACKUP_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TOTP_DEVICE_NAME = "authenticator"
BACKUP_DEVICE_NAME = "backup codes"
_HASH_SALT = "recovery.staff.otp.backup_code"


@dataclass(frozen=True)
class IssuedAuthenticator:
    """What is shown once, to be handed over: the otpauth:// URI and the backup codes."""

    device: TOTPDevice
    config_url: str
    backup_codes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verification:
    device: object | None = None  # the device that accepted the code
    throttled: bool = False
    locked_until: datetime | None = None

    @property
    def verified(self):
        return self.device is not None


def normalise_code(code):
    """What was typed, without spaces or hyphens, lower case (backup codes are read aloud)."""
    return "".join(str(code or "").split()).replace("-", "").lower()


def backup_code_hash(*, user, code):
    digest = salted_hmac(_HASH_SALT, f"{user.pk}:{normalise_code(code)}", algorithm="sha256")
    return base64.b32encode(digest.digest()).decode("ascii")[:16].lower()


def issue_authenticator(*, user, confirmed):
    """A new TOTP device and new backup codes for `user`, replacing every older device."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=confirmed)
        codes = issue_backup_codes(user=user)
    return IssuedAuthenticator(device=device, config_url=device.config_url, backup_codes=codes)


def issue_backup_codes(*, user):
    """New backup codes for `user` (the older ones stop working); returns them, in clear, once."""
    codes = [
        get_random_string(BACKUP_CODE_LENGTH, BACKUP_CODE_ALPHABET)
        for _ in range(BACKUP_CODE_COUNT)
    ]
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
        StaticToken.objects.bulk_create(
            StaticToken(device=device, token=backup_code_hash(user=user, code=code))
            for code in codes
        )
    return codes


def format_backup_code(code):
    return f"{code[:5]}-{code[5:]}"


def authenticator_device(user):
    """`user`'s TOTP device (confirmed or waiting for its first code), or None."""
    return TOTPDevice.objects.filter(user=user).order_by("-pk").first()


def remaining_backup_codes(user):
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def verify_second_factor(*, user, code):
    """Check a code from the authenticator, or a backup code, for `user`.

    The TOTP device's throttle guards both kinds: a wrong code of either kind counts, and while
    throttled nothing is checked. A first correct code from a re-issued device confirms it.
    """
    code = normalise_code(code)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).order_by("-pk").first()
        if device is None or not code or len(code) > 32:
            return Verification()
        allowed, data = device.verify_is_allowed()
        if not allowed:
            return Verification(throttled=True, locked_until=(data or {}).get("locked_until"))
        if code.isdigit():
            # Counts its own failure, resets the throttle and records the step on success.
            if device.verify_token(code):
                if not device.confirmed:
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                return Verification(device=device)
            return Verification()
        spent = _spend_backup_code(user=user, code=code)
        if spent is None:
            device.throttle_increment()
            return Verification()
        device.throttle_reset()
        return Verification(device=spent)


def _spend_backup_code(*, user, code):
    hashed = backup_code_hash(user=user, code=code)
    token = (
        StaticToken.objects.select_for_update()
        .select_related("device")
        .filter(device__user=user, device__confirmed=True, token=hashed)
        .first()
    )
    if token is None:
        return None
    device = token.device
    token.delete()
    device.set_last_used_timestamp()
    return device
