"""Allow ``python -m lead_conversion_prediction``."""

from lead_conversion_prediction.cli import run

if __name__ == "__main__":
    run()
