"""Long-term verification: signatures judged at the time a transparency log proves they were made.

Above ``pki`` and ``tlog`` (it combines path validation with log evidence), below ``store``: it
does no database access and no network unless a log client is handed in.
"""
