"""`make bench`: throughput and latency figures, each a ratio against a baseline
measured in the same run, so that a noisy machine still gives comparable numbers.

Run with `python -m bench [--quick]`; each section is one module in bench/sections/.
"""
