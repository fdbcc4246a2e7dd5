EXTRA_DIST += contrib/wharf.pc.in
