"""The bank test under fire: `python -m faults` (see docs/reliability.md)."""
