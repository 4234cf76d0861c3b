"""Use cases of the auth gateway: they work on the entrypoint's connection, the entrypoint commits."""
