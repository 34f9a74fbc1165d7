"""enrichers stage."""
