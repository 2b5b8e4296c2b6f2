"""requests_api's repository: the statements its routes run, one module per aggregate (requests, targets,
evidence, the transparency report). A route parses, authorises, calls these functions and shapes the answer; the
functions run in the caller's session and transaction and never commit. The lifecycle's own statements (creating a
request, its transitions, what an owner or the agency may see of it) live with the rules they serve, in
`service`, `states` and `evidence`."""
