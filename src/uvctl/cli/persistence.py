"""`uvctl persistence` commands (to be written)."""

COMMANDS: list = []
