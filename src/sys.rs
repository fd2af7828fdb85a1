//! $SYS topics and the status the `status` command reads.
