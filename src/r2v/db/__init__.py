"""The SQL task store: SQLite (embedded) or PostgreSQL (scale-out), chosen by URL."""
