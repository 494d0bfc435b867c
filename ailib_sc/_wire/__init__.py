"""Wire codecs, one module per provider family. Sans-I/O: no I/O library imported."""
