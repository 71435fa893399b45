"""`python -m benchmark`: the Hydra application (same as the `mribench` console script)."""

from benchmark.cli import main

if __name__ == "__main__":
    main()
