"""What every stage shares: atomic writes, errors, provenance, table files, job set-up, devices."""
