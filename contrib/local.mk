EXTRA_DIST += contrib/wharf.pc.in contrib/quickstart.sh .ci/run
