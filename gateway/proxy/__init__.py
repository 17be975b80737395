"""The streaming reverse proxy (work in progress)."""
