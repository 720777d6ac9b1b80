// Package vfs is the filesystem seam under the store: every byte the store writes, every
// fdatasync and every file creation, rename and removal goes through an FS. Default is the
// real operating-system filesystem; Faulty wraps any FS and injects errors (write errors,
// short writes, fsync errors, ENOSPC) for tests; Lossy wraps any FS and, on Crash, drops
// everything a power cut could lose (bytes not fdatasync'ed, directory entries not fsync'ed).
//
// Reads of large files are memory-mapped by the store through File.Fd, so a File must be
// backed by a real descriptor. The package also provides WriteFileAtomic, the one way Rocketry
// replaces a metadata file (temp file, fsync, rename, fsync dir).
//
// Concurrency: OS and its Files are safe for concurrent use as the underlying syscalls are.
// Faulty's rules are guarded by its own mutex (a leaf lock).
package vfs
