"""uvctl backend plugin: meadowproxy."""
