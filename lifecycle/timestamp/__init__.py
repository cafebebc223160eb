"""RFC 3161 timestamps: proof of when a signature existed.

``client`` asks a time-stamping authority (TSA) for tokens over a DSSE signature's bytes,
``authority`` is the local TSA that ``serve`` answers at ``/tsa``, ``tokens`` keeps tokens in the
signature's DSSE v1.1 extension, and ``proof`` turns the tokens of a signature into a proven
signing time (or the reasons it proves nothing).
"""
