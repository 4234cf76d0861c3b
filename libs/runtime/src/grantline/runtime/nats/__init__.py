"""The NATS layer: connections, the three JetStream streams, publishing, consuming, request/reply."""
