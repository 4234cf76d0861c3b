"""Telemetry set up once for every service: JSON logs, OpenTelemetry traces and Prometheus metrics."""
