"""aggregators stage."""
