"""Search spaces: the spec DSL, architecture choices, sampling and encoding, and the elastic supernets."""
