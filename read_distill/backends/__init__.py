"""Teacher and student backends; heavy ones are imported by name on first use."""
