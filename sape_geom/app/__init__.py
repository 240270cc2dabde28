"""The faces of the library: the command line, the worker process (the add-on's protocol) and batch runs."""
