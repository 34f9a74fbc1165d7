"""parsers stage."""
