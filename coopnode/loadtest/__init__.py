"""Load generators and reference servers for the benchmarks and the capacity harness."""
