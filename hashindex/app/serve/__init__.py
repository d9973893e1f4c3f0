"""The query service (`hashindex serve`): the index and its text model loaded once, searched
over HTTP."""
