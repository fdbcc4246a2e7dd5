# unit tests of core/ (added with the core)
