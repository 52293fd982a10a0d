"""The job list behind `GET /jobs`: an index in two streams whose pages cost what they hold.

`index` writes it (at submission, at a cancel, and from every change of a job record through the
`indexer`); `pages` reads it newest first; `cursor` encodes where a page ended. The layout is in
`schemas.names` and docs/nats.md.
"""
