"""PrCore Workbench adapters: the command line, the Panel dashboard and the REST/SSE handlers over the core facade."""
