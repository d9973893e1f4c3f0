"""indexer: turns a user's files into a hashindex index (read → embed → train → encode → write)."""
