// Package outbox closes the gap between a service's database commit and
// its publish: an event is stored in the same transaction as the change it
// announces, and a Relay publishes it to a Ferry broker afterwards — so a
// committed change always gets its event, even with the broker down at the
// moment of the commit, and a rolled-back change never does.
//
//	err := outbox.Transact(ctx, db, func(tx *sql.Tx) error {
//		if _, err := tx.ExecContext(ctx, `INSERT INTO orders …`, …); err != nil {
//			return err
//		}
//		return outbox.Publish(ctx, tx, "events.orders.placed", &OrderPlaced{…},
//			broker.WithID(orderID), broker.WithKey(customerID))
//	})
//
// and once per process (or in as many replicas as you like):
//
//	relay := outbox.NewRelay(db, outbox.WithNotifier(pgnotify.New(db))) // pgnotify: PostgreSQL only
//	svc := ferry.New(srv, ferry.WithBroker(b), ferry.WithComponent(relay))
//
// # Guarantees
//
//   - At least once: an event is marked sent only after the broker took it
//     (for JetStream: stored). A relay that dies in between publishes it
//     again; the event keeps its message ID, which the relay gives the
//     broker as its de-duplication ID (JetStream drops the copy within the
//     stream's duplicate window) and which an idempotent consumer (package
//     inbox) records.
//   - Order per key: the events of one key (broker.WithKey) are published
//     one after another in the order they were stored, across replicas,
//     and an event that fails holds back the later events of its key until
//     it is published. Events without a key are published in any order,
//     several at once (WithConcurrency).
//   - No double send by healthy replicas: on PostgreSQL each replica claims
//     batches (FOR UPDATE SKIP LOCKED, then a claim stamped with the
//     database clock) and publishes only what it claimed; on SQLite one
//     replica at a time holds a lease and the others wait to take over.
//     A replica stalled longer than the lease TTL in the middle of a
//     publish is the exception (WithLeaseTTL).
//   - Retries: while the broker fails, the relay tries again with an
//     exponential back-off (100 ms up to WithMaxBackoff); an event the
//     broker refuses for good (broker.IsPermanent, e.g. an invalid topic)
//     is marked dead with its error, logged and counted, and kept.
//
// # Latency
//
// A relay learns of new events by a wake-up — at once when the
// transaction ran through Transact, or was followed by Notify, in the
// relay's process; at commit on PostgreSQL with a pgnotify listener, from
// any process — or otherwise at its next poll (WithPollInterval, 1 s by
// default). bench/README.md has the commit → consumer figures.
//
// On PostgreSQL an event is published only once every transaction that
// began writing before it has ended (its xid8 is below the snapshot's
// xmin): transaction IDs are assigned in one order and commits happen in
// another, and this is what keeps a key's events in order. A long-running
// writing transaction — anywhere in the cluster — therefore delays events
// committed after it began; the relay notices and looks again every few
// milliseconds (up to a second apart) until it has ended. Keep writing
// transactions short; read-only ones do not count.
//
// # Schema
//
// The tables are ferry_outbox (and, on SQLite, ferry_outbox_lease; on
// PostgreSQL also a trigger function that NOTIFYs NotifyChannel). A Relay
// creates them at Start unless WithoutMigrate; Migrate does it by hand,
// and Dialect.Schema returns the SQL for a migration tool of your own
// (`ferry outbox schema postgres` prints it, with the inbox's).
// Events are kept after they are sent for WithRetention (24 h by default)
// and then deleted; dead events are kept until you delete them.
//
// SQLite needs write-ahead logging and a busy timeout for a relay and the
// application to share the file, and BEGIN IMMEDIATE transactions avoid
// lock upgrades that fail at once:
// "file:app.db?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
// with modernc.org/sqlite. SQLite has one writer at a time and its busy
// wait is not fair: under a sustained stream of writing transactions the
// relay's one write per round (marking a batch sent) can queue behind them
// for a while, and the backlog then drains when the writes pause (seen in
// the fault test, eight writers committing as fast as they can). Where
// that matters, use PostgreSQL.
//
// # Observability
//
// The relay exports MetricBacklog and MetricBacklogAge (gauges, read from
// the table at each collection), MetricPublished by outcome and
// MetricPublishDuration. Publish stores the trace context of its ctx
// (W3C traceparent and baggage) with the event, and the relay publishes
// with it as the parent: a traced broker's producer span, and the
// consumer's span, join the trace of the request that committed the event.
package outbox
