"""Pure policy: threshold and verdict over classified findings."""
