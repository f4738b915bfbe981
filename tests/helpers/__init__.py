"""What several test modules share: model builders, hand-written inputs and the Snakemake runner.

Test modules import from here, never from one another.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
