"""Reads about portal accounts (writes live in portal.services)."""

from portal.models import ContactChangeRequest, Student, User


def notice_address(user):
    """Where notices about `user`'s account go (password changed...), or "" for nowhere.

    The verified recovery email first (the person's own choice). Else, for a parent, the email
    the SIS holds for them, but only if no other guardian shares it: a notice must never reach
    a shared household address (SPEC §6.7), nor tell a co-parent about someone else's account.
    """
    if user.recovery_email and user.recovery_email_verified_at:
        return user.recovery_email
    guardian = user.guardian if user.role == user.Role.PARENT else None
    if guardian is not None and guardian.email and not guardian.email_shared:
        return guardian.email
    return ""


# --- What the signed-in person may see on the portal pages, and nothing else.


def linked_children(*, user):
    """The signed-in parent's own children: active students linked to their guardian record.

    Always scoped by the user's own guardian link, never by an id from the request, so no
    URL or query string can reach another family's child (checklist K, SPEC §2.3).
    """
    if user.role != User.Role.PARENT or user.guardian_id is None:
        return Student.objects.none()
    return (
        Student.objects.filter(links__guardian_id=user.guardian_id, active=True)
        .select_related("school")
        .order_by("given_name", "family_name", "sourced_id")
        .distinct()
    )


def own_student_record(*, user):
    """The signed-in student's own SIS record (active only), or None."""
    if user.role != User.Role.STUDENT or user.student_id is None:
        return None
    return Student.objects.select_related("school").filter(pk=user.student_id, active=True).first()


def own_guardian_record(*, user):
    """The signed-in parent's own SIS guardian record, or None."""
    if user.role != User.Role.PARENT or user.guardian_id is None:
        return None
    return user.guardian


def contact_change_requests(*, user):
    """The user's own contact-change requests, newest first."""
    return ContactChangeRequest.objects.filter(user=user).order_by("-created_at", "-pk")
