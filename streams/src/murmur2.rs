//! The Java client's default partitioner, kept under its old path for existing callers. The
//! implementation lives in [`crate::partitioner`], the one home of key → partition; new code
//! should ask the sub-topology's [`crate::partitioner::PartitionPlan`] instead, since producers
//! that are not Java place keys with other hashes.

pub use crate::partitioner::murmur2;

/// The partition the Java producer picks for a non-null key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    crate::partitioner::murmur2_partition(key, partitions)
}
