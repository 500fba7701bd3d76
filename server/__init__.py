"""The web side: per-session view state, handlers (plain functions), and the HTTP API."""
