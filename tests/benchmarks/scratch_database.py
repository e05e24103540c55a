"""A benchmark's throw-away PostgreSQL database, named by its URL's path."""

from __future__ import annotations

from urllib.parse import urlparse


def _admin(url: str) -> tuple[str, str]:
    parts = urlparse(url)
    return parts._replace(path="/postgres").geturl(), parts.path.lstrip("/")


def recreate_database(url: str) -> None:
    import psycopg

    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
