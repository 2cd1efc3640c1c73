"""The serving layer: lifecycle, admission, metrics and the fast cord dispatcher."""
