"""End-to-end workflows behind the command line (``steerable3d <workflow>``)."""
