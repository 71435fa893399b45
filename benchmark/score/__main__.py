"""`python -m benchmark.score real=DIR generated=DIR [train=DIR] output_dir=OUT`."""

from benchmark.score.cli import main

if __name__ == "__main__":
    main()
