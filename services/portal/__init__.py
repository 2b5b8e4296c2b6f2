"""portal: serves the built web portal (web/dist) and its runtime configuration; imports no other service."""
