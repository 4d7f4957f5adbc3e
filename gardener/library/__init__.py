"""Reading a library: files to Documents, Patterns and Gardens, and the one atomic writer."""
