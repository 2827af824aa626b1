"""Read-only access to the LMS database (DESIGN.md, "The LMS contract")."""
