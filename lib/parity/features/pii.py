"""Incidental PII: detection and redaction of emails and phone numbers in free text.

Column helpers only (Column in, Column out), built from Spark's regex functions so they run
in the JVM. PII columns of the raw sources are dropped where features are built; free text
is redacted before any feature is computed from it.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# International or local numbers: an optional +country code, then 7+ digits with separators.
PHONE_PATTERN = r"(\+\d{1,3}[\s.-]?)?(\(?\d{2,4}\)?[\s.-]?){2,4}\d{2,4}"
EMAIL_TOKEN = "[EMAIL]"
PHONE_TOKEN = "[PHONE]"


def redact(text: Column) -> Column:
    """Replace emails and phone numbers in `text` with [EMAIL] and [PHONE]."""
    no_email = F.regexp_replace(text, EMAIL_PATTERN, EMAIL_TOKEN)
    return F.regexp_replace(no_email, PHONE_PATTERN, PHONE_TOKEN)


def contains_pii(text: Column) -> Column:
    """True where `text` holds an email or a phone number (null stays null)."""
    return text.rlike(EMAIL_PATTERN) | text.rlike(PHONE_PATTERN)
