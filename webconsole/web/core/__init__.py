"""Page plumbing every page uses: dependencies (session, CSRF, the Hanami API), rendering, error pages, security headers, listings, forms, human-readable sizes."""
