"""Everything that talks to Orthanc. Framework-free: nothing here imports Django."""
