"""Simulated vendors (Veesing SMS/MMS/voice, Chuangrui SMS, Meilian 5C MMS) for local runs, tests
and benchmarks, written from the vendor documents alone: nothing here imports the rest of herald.

See docs/sandbox.md.
"""
