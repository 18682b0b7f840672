// Package kafka is a broker.Broker on Apache Kafka, through franz-go
// (github.com/twmb/franz-go/pkg/kgo). Import it for its side effect to
// select it from configuration:
//
//	import _ "github.com/ferry-go/ferry/contrib/broker/kafka" // broker.kind: kafka
//
// or build one in code with New(ctx, WithSeeds("kafka:9092"), ...).
//
// # Mapping
//
// A Ferry topic is a Kafka topic of the same name ("orders.placed"); it
// may hold only what Kafka names allow (letters, digits, '.', '_', '-';
// 249 bytes). Publish produces one record, synchronously, with acks=all
// and the idempotent producer: it returns once every in-sync replica has
// it. The record key is the message ID (WithKey chooses another), so the
// partition follows the key; the headers are the message's, plus
// ferry-msg-id (IDHeader) with the ID.
//
// A subscription is a member of a consumer group with its own client:
// group "<queue>__<topic>" for a Queue (per queue and topic, as
// JetStream's durable consumers are), and a group of its own,
// "ferry-fanout__<topic>__<random>", for a fan-out subscription, deleted
// by Drain. A queue subscription starts where its group committed, or at
// the beginning of the topic for a new group (DeliverNew: at its end); a
// fan-out subscription starts at the end, as on JetStream. Either way the
// start offsets are committed before the group is joined, so a message
// published after Subscribe returned is never missed. Subscribe returns
// once the member joined its group (when its topics exist). Wildcards
// ("orders.*", "orders.>") use franz-go's regex consumption, translated
// exactly ("*" is one token, ">" one or more); new matching topics are
// found every WithTopicRefresh and read from their beginning. Subscribe
// creates a missing topic (WithAutoCreateTopics, WithPartitions).
//
// # Guarantees
//
// At least once. Offsets are committed by hand, only for finished
// records: per partition, the highest offset up to which every record
// this member took has succeeded or been dead-lettered (+1), so a crash
// replays the unfinished ones and never skips one. Commits go out at most
// every WithCommitInterval, and at once when partitions are revoked and
// at Drain. Up to Concurrency handlers run at once, records of one
// partition concurrently too unless Ordered.
//
// A failed handler is retried in place after the back-off, up to
// MaxDeliver attempts (Delivery.Attempt counts them); a permanent error
// (broker.IsPermanent) or the last attempt publishes one dead letter to
// SubscribeConfig.DeadLetter — "dlq.<topic>", the convention of every
// Ferry broker — with the ferry-dead-letter-* headers, and only then is
// the record finished. A dead letter that cannot be published is retried
// with the back-off; the record stays unfinished meanwhile. Attempts are
// counted in memory: after a crash or a rebalance a record starts again
// at attempt 1.
//
// Rebalances (BlockRebalanceOnPoll, OnPartitionsRevoked): records of a
// revoked partition that have not started are dropped (the next owner
// starts at the commit), retries stop, running handlers get AckWait to
// finish and are then cancelled, and the finished prefix is committed
// before the partition moves. Records start in poll order as workers
// take them, none once its partition is being revoked, so when those that
// ran succeeded the commit covers them all: none is handled again. Lost
// partitions (a failed session) are dropped without a commit. Drain stops
// polling, lets handlers finish until its context ends (then cancels
// them), commits, and leaves the group so the other members take over at
// once.
//
// # Limits
//
// No de-duplication by message ID: the idempotent producer de-duplicates
// its own retries, not two publishes of one ID. Ordered holds per
// partition: Kafka orders a topic only within a partition, so a topic of
// one partition (WithPartitions(1, -1)) or a key per ordered stream
// (WithKey) is needed for an order across messages. A record whose
// retries and back-off run holds one worker meanwhile; a partition's
// commit waits for its slowest record.
package kafka
