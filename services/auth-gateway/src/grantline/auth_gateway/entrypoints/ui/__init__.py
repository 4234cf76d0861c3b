"""The admin UI (`/admin`) and the end user's connect pages (`/connect`), server-rendered."""
