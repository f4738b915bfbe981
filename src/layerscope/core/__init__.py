"""What every stage shares: atomic writes, errors, provenance, job set-up, devices."""
