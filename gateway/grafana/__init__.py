"""grafana stage."""
