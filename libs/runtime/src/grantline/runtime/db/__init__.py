"""The database layer: SQLAlchemy 2 async on psycopg 3, one Postgres schema per service."""
