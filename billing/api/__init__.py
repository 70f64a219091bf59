"""The JSON API for members' software, versioned under /api/v1/ (docs/api.md)."""
