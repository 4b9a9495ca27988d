"""Metrics names and conventions, Prometheus rules and Grafana dashboards: what a platform engineer watches."""
