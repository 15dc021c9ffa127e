"""`uvctl coordinator` commands (to be written)."""

COMMANDS: list = []
