"""Third-party code vendored into tfmelanoma (see README.md in this folder)."""
