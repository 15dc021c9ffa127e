"""uvctl backend plugin: memory."""
