"""Administration: projects, users and roles, the audit trail, the error log and the system page."""
