"""Handler modules of the example specs in ``specs/``: plain Python, no model download."""
