"""The composition root: the `jetscribe` command line and `jetscribe serve`.

It imports every other package (`schemas`, `jetscribe`, `gateway`, `worker`, `client`) and nothing imports it.
"""
