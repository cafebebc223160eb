"""Long-running parts: the HTTP endpoints (CRL, OCSP) and, later, the scheduler."""
