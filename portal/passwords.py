"""One normal form for passwords, used wherever a password is set, checked or validated.

Passwords are normalised with Unicode NFKC before hashing and before checking (NIST SP 800-63B
§3.1.1.2, checklist H7): "ñ" typed as one code point or as "n" + U+0303 (which some keyboards
and password managers produce) is then the same password, and so are full-width and ordinary
letters. Nothing else is changed: no trimming, no case folding, so a space or a capital still
counts. NFKC is idempotent, so normalising an already normal password again changes nothing.

Every path that sets a password goes through portal.services.user_set_password (which calls this);
every path that checks one (the login backend, the account page's old password) calls
check_user_password or normalises with normalise_password before user.check_password.
"""

import unicodedata


def normalise_password(password):
    """The password in NFKC form (the form that is hashed and checked)."""
    if password is None:
        return None
    return unicodedata.normalize("NFKC", str(password))


def check_user_password(user, password):
    """user.check_password on the normal form (True if it matches)."""
    return user.check_password(normalise_password(password))
