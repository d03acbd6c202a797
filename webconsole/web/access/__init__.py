"""Signing in and out, switching project, the home page and the user's own account."""
