"""Pure rules of the auth gateway: no I/O, no database, no HTTP server."""
