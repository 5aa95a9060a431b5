"""HTTP API of the service: routes, wire schemas and problem+json errors."""
