"""Command-line front ends of `python -m infer` and the console plumbing both CLIs share."""
