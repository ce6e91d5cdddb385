//! Resharding a provisioned stream: a new shard count, a split, a merge.
//!
//! The checks that need no call — a split point inside the shard, two open and adjacent shards
//! for a merge — are pure functions here ([`split_point`], [`check_merge`]), so a bad request is
//! refused with a clear reason before anything reaches the service. Each call returns once the
//! service accepted it; the stream is UPDATING until the change is done
//! ([`StreamClient::wait_until_active`]).

use crate::ids::ShardId;
use aws_sdk_kinesis::types::ScalingType;

use crate::error::Error;
use crate::stream::StreamClient;
use crate::stream::shard::Shard;

/// Why a split or merge cannot be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReshardError {
    /// The shard is not among the stream's shards.
    #[error("stream has no shard {0}")]
    UnknownShard(ShardId),
    /// The shard is closed (a parent of an earlier split or merge).
    #[error("shard {0} is closed; only open shards can be split or merged")]
    Closed(ShardId),
    /// The shard owns a single hash key and cannot be split.
    #[error("shard {0} owns a single hash key and cannot be split")]
    TooNarrow(ShardId),
    /// The two shards' hash key ranges do not touch.
    #[error("shards {0} and {1} are not adjacent (their hash key ranges do not touch)")]
    NotAdjacent(ShardId, ShardId),
    /// A shard cannot be merged with itself.
    #[error("shard {0} cannot be merged with itself")]
    SameShard(ShardId),
}

/// The starting hash key of the upper child when `shard` is split in two equal halves.
///
/// # Errors
/// [`ReshardError::Closed`] for a closed shard, [`ReshardError::TooNarrow`] for a shard owning
/// one hash key.
///
/// ```
/// use async_kinesis::Shard;
/// use async_kinesis::reshard::split_point;
///
/// let shard = Shard {
///     shard_id: "shardId-000000000000".into(),
///     parent_shard_id: None,
///     adjacent_parent_shard_id: None,
///     starting_hash_key: 0,
///     ending_hash_key: u128::MAX,
///     starting_sequence_number: "1".into(),
///     ending_sequence_number: None,
/// };
/// assert_eq!(split_point(&shard)?, 1u128 << 127);
/// # Ok::<(), async_kinesis::reshard::ReshardError>(())
/// ```
pub fn split_point(shard: &Shard) -> Result<u128, ReshardError> {
    if !shard.is_open() {
        return Err(ReshardError::Closed(shard.shard_id.clone()));
    }
    let (start, end) = (shard.starting_hash_key, shard.ending_hash_key);
    if start == end {
        return Err(ReshardError::TooNarrow(shard.shard_id.clone()));
    }
    // (end - start) / 2 + 1 never overflows and leaves both halves non-empty.
    Ok(start + (end - start) / 2 + 1)
}

/// Checks that `a` and `b` can be merged: both open, different, with touching hash key ranges.
/// Returns them ordered by hash key (lower range first), as MergeShards names them.
///
/// # Errors
/// [`ReshardError::Closed`], [`ReshardError::SameShard`] or [`ReshardError::NotAdjacent`].
pub fn check_merge<'a>(a: &'a Shard, b: &'a Shard) -> Result<(&'a Shard, &'a Shard), ReshardError> {
    for shard in [a, b] {
        if !shard.is_open() {
            return Err(ReshardError::Closed(shard.shard_id.clone()));
        }
    }
    if a.shard_id == b.shard_id {
        return Err(ReshardError::SameShard(a.shard_id.clone()));
    }
    let (lower, upper) = if a.starting_hash_key <= b.starting_hash_key {
        (a, b)
    } else {
        (b, a)
    };
    if lower.ending_hash_key.checked_add(1) != Some(upper.starting_hash_key) {
        return Err(ReshardError::NotAdjacent(
            a.shard_id.clone(),
            b.shard_id.clone(),
        ));
    }
    Ok((lower, upper))
}

/// Finds `shard_id` among `shards`.
///
/// # Errors
/// [`ReshardError::UnknownShard`].
pub fn find_shard<'a>(shards: &'a [Shard], shard_id: &str) -> Result<&'a Shard, ReshardError> {
    shards
        .iter()
        .find(|s| s.shard_id == shard_id)
        .ok_or_else(|| ReshardError::UnknownShard(shard_id.into()))
}

impl StreamClient {
    /// Changes the number of open shards with uniform scaling (UpdateShardCount).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 shards; the service's errors (e.g. a count more than
    /// double or less than half the current one, or `ResourceInUseException` while the stream
    /// is still UPDATING).
    ///
    /// # Cancel safety
    /// Not cancel safe: the request may have reached the service.
    pub async fn update_shard_count(&self, shards: u32) -> Result<(), Error> {
        const OP: &str = "UpdateShardCount";
        let target = i32::try_from(shards)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("a shard count must be 1..=2^31-1, got {shards}"))
            })?;
        let (name, arn) = self.stream().request_ids();
        self.sdk_client()
            .update_shard_count()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .target_shard_count(target)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .map_err(|e| self.error(OP, e))
            .map(drop)
    }

    /// Splits `shard_id` into two halves of its hash key range (SplitShard at
    /// [`split_point`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the [`ReshardError`] when the shard is unknown, closed
    /// or owns one hash key; the service's errors.
    ///
    /// # Cancel safety
    /// Not cancel safe: the request may have reached the service.
    pub async fn split_shard(&self, shard_id: &str) -> Result<(), Error> {
        const OP: &str = "SplitShard";
        let shards = self.list_shards().await?;
        let shard = find_shard(&shards, shard_id).map_err(invalid)?;
        let at = split_point(shard).map_err(invalid)?;
        let (name, arn) = self.stream().request_ids();
        self.sdk_client()
            .split_shard()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .shard_to_split(shard_id)
            .new_starting_hash_key(at.to_string())
            .send()
            .await
            .map_err(|e| self.error(OP, e))
            .map(drop)
    }

    /// Merges two adjacent open shards (MergeShards), in either order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the [`ReshardError`] when a shard is unknown or closed,
    /// or the two are not adjacent; the service's errors.
    ///
    /// # Cancel safety
    /// Not cancel safe: the request may have reached the service.
    pub async fn merge_shards(&self, a: &str, b: &str) -> Result<(), Error> {
        const OP: &str = "MergeShards";
        let shards = self.list_shards().await?;
        let (a, b) = (
            find_shard(&shards, a).map_err(invalid)?,
            find_shard(&shards, b).map_err(invalid)?,
        );
        let (lower, upper) = check_merge(a, b).map_err(invalid)?;
        let (name, arn) = self.stream().request_ids();
        self.sdk_client()
            .merge_shards()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .shard_to_merge(lower.shard_id.as_str())
            .adjacent_shard_to_merge(upper.shard_id.as_str())
            .send()
            .await
            .map_err(|e| self.error(OP, e))
            .map(drop)
    }
}

fn invalid(err: ReshardError) -> Error {
    Error::InvalidArgument(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, start: u128, end: u128, open: bool) -> Shard {
        Shard {
            shard_id: id.into(),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            starting_hash_key: start,
            ending_hash_key: end,
            starting_sequence_number: "1".into(),
            ending_sequence_number: (!open).then(|| "9".into()),
        }
    }

    #[test]
    fn split_points_halve_the_range() {
        assert_eq!(split_point(&shard("a", 0, u128::MAX, true)), Ok(1 << 127));
        assert_eq!(split_point(&shard("a", 10, 11, true)), Ok(11));
        assert_eq!(split_point(&shard("a", 10, 12, true)), Ok(12));
        let top = split_point(&shard("a", u128::MAX - 1, u128::MAX, true));
        assert_eq!(top, Ok(u128::MAX));
        assert_eq!(
            split_point(&shard("a", 5, 5, true)),
            Err(ReshardError::TooNarrow("a".into()))
        );
        assert_eq!(
            split_point(&shard("a", 0, 9, false)),
            Err(ReshardError::Closed("a".into()))
        );
    }

    #[test]
    fn merges_need_two_open_adjacent_shards() {
        let low = shard("low", 0, 99, true);
        let high = shard("high", 100, 199, true);
        let far = shard("far", 300, 399, true);
        let closed = shard("closed", 200, 299, false);
        let ordered = check_merge(&high, &low).expect("adjacent");
        assert_eq!(
            (ordered.0.shard_id.as_str(), ordered.1.shard_id.as_str()),
            ("low", "high")
        );
        assert_eq!(
            check_merge(&low, &far),
            Err(ReshardError::NotAdjacent("low".into(), "far".into()))
        );
        assert_eq!(
            check_merge(&high, &closed),
            Err(ReshardError::Closed("closed".into()))
        );
        assert_eq!(
            check_merge(&low, &low),
            Err(ReshardError::SameShard("low".into()))
        );
    }

    #[test]
    fn unknown_shards_are_named() {
        let shards = [shard("a", 0, 9, true)];
        assert!(find_shard(&shards, "a").is_ok());
        let err = find_shard(&shards, "b").expect_err("unknown");
        assert_eq!(err.to_string(), "stream has no shard b");
    }
}
