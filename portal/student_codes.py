"""Staff-issued one-time activation codes for students (SPEC §6.4, the `codes` policy).

    code = issue_student_code(student_user=account, staff_user=staff)  # print it, hand it over
    redeem_student_code(username=..., code=..., password=..., request=request)

With STUDENT_INITIAL_PASSWORD = "codes" this is how every student gets in the first time; under
the default policy it is how staff help a student whose default has expired or who has none (no
birth date on record). A code is random (60 bits), printable, single use and expires after
STAFF_CODE_MAX_AGE; issuing a new one revokes the last. Only its keyed hash is stored
(recovery.tokens.mint_code). Redeeming sets the student's own password; it does not sign in.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied
from django.db import transaction

from portal.passwords import normalise_password
from portal.services import user_set_password
from recovery import tokens
from recovery.audit import record_event


class CodeRefused(Exception):
    """The username and code do not go together (unknown, wrong, used, expired, revoked)."""


def issue_student_code(*, student_user, staff_user, request=None):
    """Issue a one-time code for `student_user` on behalf of `staff_user`; return it."""
    roles = get_user_model().Role
    if student_user.role != roles.STUDENT or not student_user.is_active:
        raise ValueError("codes are issued only to active student accounts")
    if not staff_user.is_active or not (staff_user.role == roles.STAFF or staff_user.is_superuser):
        raise PermissionDenied("only support staff issue codes")
    code = tokens.mint_code(user=student_user)
    record_event(
        action="student_code.issued", request=request, actor=staff_user, subject=student_user
    )
    return code


def _student_named(username):
    model = get_user_model()
    return model._default_manager.filter(
        username=username, role=model.Role.STUDENT, is_active=True
    ).first()


def redeem_student_code(*, username, code, password, request=None):
    """Spend the code and set `password` for the student named `username`.

    Raises CodeRefused (one kind for every reason) or a ValidationError from the password
    validators. The password is validated only after the code proved right, so the validators
    (which refuse the birth date and names) tell nothing to someone without the code; a refused
    password rolls the spending back, and the code can be used again with a better one.
    """
    password = normalise_password(password)
    student = _student_named(username)
    try:
        with transaction.atomic():
            if student is None:
                raise CodeRefused
            try:
                tokens.consume_code(user=student, code=code)
            except tokens.TokenError as error:
                raise CodeRefused(type(error).__name__) from None
            validate_password(password, student)
            user_set_password(
                user=student, password=password, request=request, reason="first_login"
            )
    except CodeRefused as refusal:
        record_event(
            action="student_code.refused",
            request=request,
            subject=student,
            identifier=username,
            detail={"reason": str(refusal) or "unknown_username"},
        )
        raise
    record_event(action="student_code.redeemed", request=request, subject=student)
    return student
