"""One normal form for matching what people type against what the SIS sent."""

import unicodedata


def normalise_email(value):
    """Trim, NFKC, casefold: the form addresses are matched on (SPEC §6.6).

    Matching only: mail always goes to the address as stored, never to this form, so a
    look-alike that normalises equal (a Kelvin sign, a full-width letter) still cannot
    redirect anyone's mail (CVE-2019-19844).
    """
    if not value:
        return ""
    return unicodedata.normalize("NFKC", value.strip()).casefold()
