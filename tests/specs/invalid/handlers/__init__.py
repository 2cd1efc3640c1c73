"""Handler modules for the invalid spec examples."""
