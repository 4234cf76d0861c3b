"""Use cases of the auth gateway: they flush, the entrypoint commits."""
