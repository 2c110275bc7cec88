"""`python -m ingestion_project.demo`: the same as `ingestion demo`."""

from ingestion_project.cli import main

if __name__ == "__main__":
    main(["demo"])
