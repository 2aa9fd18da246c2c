"""Local stand-ins for the outside world, shared by the demo, end-to-end tests and benchmarks."""
