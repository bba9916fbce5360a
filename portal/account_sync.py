"""The roster drives accounts (SPEC §4): run inside every roster import's transaction.

`sync_accounts_with_roster` receives portal.roster.signals.roster_imported, so what it changes
commits or rolls back with the import. After an import:

1. Disable: an active account whose guardian or student is inactive (gone from the SIS) or
   disabled (enabledUser=false) gets is_active=False and disabled_by_sis=True, and every
   outstanding link of it is revoked. Its sessions end on their next request: the auth backend
   refuses inactive users. Welcome emails still queued for it get no link (the outbox refuses
   to mint one for an inactive user).
2. Restore: an account that (1) disabled comes back when the SIS lists and enables the person
   again. Accounts disabled by anyone else stay disabled. Revoked links stay revoked; a parent
   still waiting to activate gets a fresh welcome (step 1 cleared welcome_sent_to, so step 3
   sends one).
3. SIS email changes for parents, where the guardian's email differs (normalised) from the one
   the account knows:
   - not yet activated: the old activation link is revoked and, if the new address is usable
     (not empty, not shared with another guardian), a fresh welcome goes there;
     User.email and welcome_sent_to follow it. A new address that is empty or shared gets no
     welcome: the link is revoked, welcome_sent_to is cleared, and the next usable address
     the SIS sends gets the welcome.
   - activated (checklist L5): User.email follows the SIS; the recovery email stays the
     parent's own choice. Outstanding links are revoked, and if the old SIS address was where
     the account's notices went (no verified recovery email, or the recovery email is that
     address) and no other guardian now holds it, it gets a `sis_email_changed` notice.
   Students' User.email follows their SIS email (no notice: students set up Self Serve).

Only people the import created or changed are looked at (their rows carry updated_at ==
summary.changed_at), so the work is set-based UPDATEs sized by the night's changes, not by the
district: an unchanged re-import of a million users costs a few index scans.
"""

import logging

from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from portal.models import Guardian, Student, User
from portal.normalisation import normalise_email
from portal.provisioning import queue_welcome_emails
from recovery.audit import record_event
from recovery.emails import queue_email
from recovery.models import IssuedToken

logger = logging.getLogger(__name__)


def sync_accounts_with_roster(sender, *, summary, **kwargs):
    """roster_imported receiver: apply the import's changes to accounts (see module doc)."""
    changed_at = getattr(summary, "changed_at", None)
    counts = {
        "disabled": disable_accounts_gone_from_sis(changed_at=changed_at),
        "restored": restore_accounts_back_in_sis(changed_at=changed_at),
    }
    counts.update(follow_sis_email_changes(changed_at=changed_at))
    if any(counts.values()):
        logger.info("Roster import, accounts: %s", counts)
        record_event(action="roster.accounts_synced", detail=counts)
    return counts


_KINDS = (("guardian", Guardian), ("student", Student))


def _people(model, changed_at):
    """The roster rows this import wrote (every row if that is unknown)."""
    rows = model.objects.all()
    return rows if changed_at is None else rows.filter(updated_at=changed_at)


def _accounts_of(kind, people):
    """Accounts linked to `people` (a roster queryset): a semi-join the planner starts from
    the few roster rows, then the account's unique index; never a scan of every account."""
    return User.objects.filter(**{f"{kind}__in": people.values("pk")})


def revoke_outstanding_tokens(*, users, now=None):
    """Revoke every unused, unrevoked link of the users in `users` (a queryset), in one UPDATE."""
    return IssuedToken.objects.filter(
        user__in=users.values("pk"), used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now or timezone.now())


def disable_accounts_gone_from_sis(*, changed_at=None):
    """Disable the active accounts of people the SIS deactivated or disabled; return how many."""
    disabled = 0
    for kind, model in _KINDS:
        gone = _people(model, changed_at).filter(Q(active=False) | Q(enabled=False))
        targets = _accounts_of(kind, gone).filter(is_active=True)
        # Set-based UPDATEs, is_active last: until it flips, the same filter finds the same
        # accounts (a mass deactivation never travels through Python as a list of ids).
        revoke_outstanding_tokens(users=targets)
        # The welcome's link is dead now: an empty welcome_sent_to makes step 3 send a fresh
        # one if the SIS restores the parent before they activated.
        targets.filter(role=User.Role.PARENT, activated_at__isnull=True).exclude(
            welcome_sent_to=""
        ).update(welcome_sent_to="")
        disabled += targets.update(is_active=False, disabled_by_sis=True)
    return disabled


def restore_accounts_back_in_sis(*, changed_at=None):
    """Re-enable accounts this sync disabled whose person the SIS lists and enables again."""
    restored = 0
    for kind, model in _KINDS:
        back = _people(model, changed_at).filter(active=True, enabled=True)
        restored += (
            _accounts_of(kind, back)
            .filter(disabled_by_sis=True)
            .update(is_active=True, disabled_by_sis=False)
        )
    return restored


def follow_sis_email_changes(*, changed_at=None):
    """Apply changed SIS emails to parent and student accounts (see module doc, step 3).

    Python only sorts the candidates (normalised comparison: NFKC + casefold have no portable
    SQL spelling); the writes are bulk UPDATEs per outcome and one bulk insert of welcomes.
    """
    counts = {"welcomes_sent": 0, "welcomes_withheld": 0, "activated_email_changes": 0}
    counts["student_emails"] = _follow_student_emails(changed_at)
    # Only rows whose raw address differs can differ normalised: the SQL does the narrowing.
    sis_email = F("guardian__email")
    parents = (
        _accounts_of("guardian", _people(Guardian, changed_at))
        .filter(role=User.Role.PARENT, is_active=True)
        .filter(~Q(email=sis_email) | Q(activated_at__isnull=True, welcome_sent_to=""))
        .select_related("guardian")
    )
    respelt, withheld, resend, changed = [], [], [], []
    for user in parents.iterator(chunk_size=2000):
        new = user.guardian.email
        # User.email is the SIS address last seen (for staff-created accounts too, whose
        # welcome went to an address staff verified): a change is a change of that.
        same_mailbox = normalise_email(new) == normalise_email(user.email)
        if same_mailbox and (user.activated_at is not None or user.welcome_sent_to):
            respelt.append(user)  # the same mailbox: keep the SIS's spelling
        elif user.activated_at is not None:
            changed.append(user)
        elif not new or user.guardian.email_shared:
            # No address that is the parent's alone: no welcome until the SIS has one. An
            # empty welcome_sent_to says no link is out, so the next usable address gets one.
            if user.welcome_sent_to or user.email != new:
                withheld.append(user)
        else:
            resend.append(user)

    _set_email_from_sis(respelt)
    _revoke(withheld + resend + changed)
    _set_email_from_sis(withheld, welcome_sent_to="")
    _set_email_from_sis(resend, welcome_sent_to="sis")
    for user in resend:
        user.email = user.welcome_sent_to = user.guardian.email
    queue_welcome_emails(users=resend)
    _set_email_from_sis(changed)
    for user in changed:
        _notify_activated_parent(user, old=user.email)
    counts["welcomes_sent"] = len(resend)
    counts["welcomes_withheld"] = len(withheld)
    counts["activated_email_changes"] = len(changed)
    return counts


_CHUNK = 5000


def _chunks(users):
    for start in range(0, len(users), _CHUNK):
        yield [user.pk for user in users[start : start + _CHUNK]]


def _set_email_from_sis(users, *, welcome_sent_to=None):
    """User.email (and welcome_sent_to: "sis" = the same, "" = none) from the guardian row."""
    sis_email = Subquery(Guardian.objects.filter(pk=OuterRef("guardian_id")).values("email")[:1])
    values = {"email": sis_email}
    if welcome_sent_to is not None:
        values["welcome_sent_to"] = sis_email if welcome_sent_to == "sis" else welcome_sent_to
    for ids in _chunks(users):
        User.objects.filter(pk__in=ids).update(**values)


def _revoke(users):
    for ids in _chunks(users):
        revoke_outstanding_tokens(users=User.objects.filter(pk__in=ids))


def _notify_activated_parent(user, *, old):
    """Checklist L5: the old SIS address hears of the change if notices went there."""
    record_event(action="account.sis_email_changed", subject=user, detail={"activated": True})
    if _old_address_got_notices(user, old):
        queue_email(
            kind="sis_email_changed",
            to_address=old,
            user=user,
            context={"username": user.get_username()},
        )


def _old_address_got_notices(user, old):
    """Was `old` (the previous SIS email) this account's notice address, and only its own?"""
    old_normal = normalise_email(old)
    if not old_normal:
        return False
    if user.has_self_serve and normalise_email(user.recovery_email) != old_normal:
        return False  # notices go to the verified recovery email, which did not change
    # Never to an address another active guardian now has (SPEC §6.7: no shared household
    # address gets a notice).
    return not (
        Guardian.objects.filter(active=True, email_normalised=old_normal)
        .exclude(pk=user.guardian_id)
        .exists()
    )


def _follow_student_emails(changed_at):
    sis_email = Subquery(Student.objects.filter(pk=OuterRef("student_id")).values("email")[:1])
    return (
        _accounts_of("student", _people(Student, changed_at))
        .filter(role=User.Role.STUDENT)
        .exclude(email=F("student__email"))
        .update(email=sis_email)
    )
