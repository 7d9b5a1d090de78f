"""Prometheus and Grafana side of jiancha."""
