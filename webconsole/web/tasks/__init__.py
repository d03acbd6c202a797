"""Tasks: queue and follow train and request tasks (pages, rows) and their request results (results)."""
