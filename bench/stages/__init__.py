"""Benchmark stages run by bench/sync_throughput.py, one module each."""
