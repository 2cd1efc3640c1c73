"""The chutes SDK's import paths of the standard templates (``chutes.chute.template.<name>``)."""
