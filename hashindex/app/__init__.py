"""The applications on top of the library and the indexer: the `hashindex` command line
(app/cli) and, later, the HTTP service. The only modules that may import `indexer`."""
