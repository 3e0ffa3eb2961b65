-- Where a lease holder's process id means something: the kernel's boot id and the holder's pid
-- namespace. A holder whose process is gone is taken over at once only when it ran on this
-- host, in this boot and in this pid namespace: two containers on one database with the same
-- host name (host networking) have their own pid namespaces, and a pid missing from ours says
-- nothing about a process in theirs (wait for its lease to expire instead).
ALTER TABLE process_leases ADD COLUMN scope TEXT;
