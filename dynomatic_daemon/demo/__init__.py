"""``dynomatic demo``: the real daemon against a simulated app, on the stand-ins in ``sandbox``."""
