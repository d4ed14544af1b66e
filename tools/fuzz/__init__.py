"""`make fuzz`: Schemathesis against the OpenAPI schema of a live server (see run.py)."""
