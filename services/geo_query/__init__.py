"""geo_query: read-only spatial questions over the registry (radius, polygon, bbox, nearest K, OGC API)."""
