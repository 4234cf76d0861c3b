"""The public HTTP API (`/v1`), one router per area."""
