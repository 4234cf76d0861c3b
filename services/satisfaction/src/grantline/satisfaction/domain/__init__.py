"""Pure satisfaction rules: requirements, reports, the connection mirror ordering and run admission."""
