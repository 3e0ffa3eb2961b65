"""Drops the named files' pages from the operating system's page cache (those files only), so
the next read comes from the disk: a cold start of one database without touching the rest of
the machine. Usage: python3 docs/bench/evict_cache.py FILE..."""
import os
import sys

for path in sys.argv[1:]:
    if os.path.exists(path):
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)  # only clean pages can be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
