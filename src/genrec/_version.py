"""The package version, on the ground floor: importing it reaches nothing else."""

__version__ = "0.1.0"
