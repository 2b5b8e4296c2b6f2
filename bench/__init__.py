"""`make bench`: geo_query and the bulk import measured side by side with their anchors (the raw asyncpg limit,
tipg, GDAL's ogr2ogr) on one seeded data set, in one run, on this machine. Entry point: `python -m bench.run`."""
