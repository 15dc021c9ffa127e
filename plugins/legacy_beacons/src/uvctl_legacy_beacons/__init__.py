"""uvctl backend plugin: legacy_beacons."""
