"""uvctl backend plugin ``legacy_beacons`` (legacy): Ultravisor's older QueuePersistence /
ManifestStore beacons, reached through a coordinator with :mod:`uvctl.mesh`."""
