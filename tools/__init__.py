"""Development tools, not shipped in the wheel: the toy-model trainers (`python -m tools.train_toy_zoo`,
`python -m tools.train_toy_captioner`), the fixture builders of the benchmarks and tests, and `metrics`.

Run from the repository root (the tests and benchmarks put it on `sys.path`).
"""
