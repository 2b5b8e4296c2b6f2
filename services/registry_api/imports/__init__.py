"""registry_api's bulk imports, as jobs. Each module has one job:

- `routes`: the HTTP operations (parse, authorise, answer), on the service's request pool;
- `schemas`: the contract's bodies, examples and descriptions;
- `settings`: `ImportSettings`, the CANVASS_IMPORT_* environment;
- `jobs`: the job's row, read and created;
- `runner`: the job's life (claim, heartbeat, run, finish or fail, take-over, the sweep), on its own pool;
- `formats`: reading GeoJSON, GeoJSON Text Sequences and CSV in any CRS, a feature at a time;
- `features`: each feature validated as a single registration is (`services/registry_api/validation.py`);
- `staging`: valid features sealed into named staging rows, and the set-based checks of a staged chunk;
- `merge`: the set-based SQL that writes the staged rows, in the job's one transaction;
- `retention`: how long reports, credentials and uploads are kept;
- `delivery`: the report's download and the credentials' mail.
"""
