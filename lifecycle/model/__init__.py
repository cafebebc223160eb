"""The pure, typed model every layer shares: fleet state and actions (:mod:`.fleet`), image
status and events (:mod:`.status`), key states and their transitions (:mod:`.key_state`), CA
roles (:mod:`.roles`), certificate statuses as a report shows them (:mod:`.cert_status`).

It imports no database, network or file code, so the planner built on it is a pure function and
the loaders in ``store``/``inventory`` can fill it without importing ``strategies``.
"""
