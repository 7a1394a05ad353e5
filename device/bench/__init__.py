"""Benchmarks and evaluations (`voxhome bench <name>`): numbers printed beside a peer's, same run."""
