"""The apply handlers, one module per concept: keys and certificates, images, ephemeral signing,
CRLs and publishing. Each module's ``HANDLERS`` maps the action kinds it does to its handlers;
:mod:`lifecycle.strategies.apply` dispatches to them."""
