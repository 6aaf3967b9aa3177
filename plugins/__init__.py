"""Built-in prescription plugins, registered through the ``prcore.plugins`` entry-point group."""
