"""`python -m pipeline ...`: the same as the `pipeline` command (torchrun launches it this way)."""

from pipeline.cli import main

main()
