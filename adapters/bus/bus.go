// Package bus carries committed events from the event store to the
// projections, over watermill (github.com/ThreeDotsLabs/watermill). The
// embedded default is watermill's GoChannel pub/sub, in process; at scale
// another watermill pub/sub (NATS JetStream, SQL) takes its place behind
// the same messages.
//
// A message carries one batch of committed events, in commit order and
// without holes (see Batch), encoded by AppendBatch; its metadata names
// the events' explicit, versioned wire names ("TimestampIssued.v1") and
// positions. A router made by Bus.NewRouter runs each handler behind
// three middlewares: PoisonQueue (outermost), Retry, Recoverer. A handler
// that fails a batch is retried a few times with backoff; when it still
// fails, or fails with a Permanent error, the batch goes to PoisonTopic,
// the router's OnPoison hook hears of it before anything else happens,
// and the batch is acknowledged: what to do next (stop that consumer) is
// the hook's decision.
//
// Publish returns only once every subscribed handler has acknowledged the
// batch, so each handler sees the batches one at a time, in the order they
// were published, and a slow handler holds the publisher back instead of
// letting batches pile up in memory.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Topics.
const (
	// EventsTopic carries batches of committed events.
	EventsTopic = "chronolog.events"
	// PoisonTopic receives the batches a handler could not apply, with
	// the reason in the message's metadata (PoisonReason).
	PoisonTopic = "chronolog.poison"
)

// Metadata keys watermill's PoisonQueue sets on a poisoned message.
const (
	PoisonReason  = middleware.ReasonForPoisonedKey
	PoisonHandler = middleware.PoisonedHandlerKey
	PoisonTopicOf = middleware.PoisonedTopicKey
)

// Config configures a Bus.
type Config struct {
	// Logger receives watermill's own logs; its chatty info level is
	// logged at debug, its errors as errors. Default slog.Default().
	Logger *slog.Logger
	// MaxRetries is how many times a failed batch is retried before it is
	// poisoned. Default 3; negative for none.
	MaxRetries int
	// RetryInterval is the first wait before a retry; each next wait
	// doubles, up to RetryMaxInterval. Defaults 50 ms and 1 s (or
	// RetryInterval, if longer).
	RetryInterval    time.Duration
	RetryMaxInterval time.Duration
	// CloseTimeout bounds how long closing a router waits for the batches
	// being handled. Default 30 s.
	CloseTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = 3
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 50 * time.Millisecond
	}
	if c.RetryMaxInterval <= 0 {
		c.RetryMaxInterval = max(time.Second, c.RetryInterval)
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 30 * time.Second
	}
}

// Validate reports every inconsistency of c.
func (c Config) Validate() error {
	var errs []error
	if c.RetryMaxInterval > 0 && c.RetryInterval > c.RetryMaxInterval {
		errs = append(errs, fmt.Errorf("bus: RetryInterval %v exceeds RetryMaxInterval %v", c.RetryInterval, c.RetryMaxInterval))
	}
	return errors.Join(errs...)
}

// Bus is the in-process pub/sub the batches travel on.
type Bus struct {
	cfg    Config
	wlog   watermill.LoggerAdapter
	pubsub *gochannel.GoChannel
}

// New makes a bus on watermill's GoChannel.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	wlog := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger.With("component", "watermill"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	ps := gochannel.NewGoChannel(gochannel.Config{
		// Publish waits for every subscriber's ack: order and backpressure.
		BlockPublishUntilSubscriberAck: true,
	}, wlog)
	return &Bus{cfg: cfg, wlog: wlog, pubsub: ps}, nil
}

// Publisher is the bus's watermill publisher.
func (b *Bus) Publisher() message.Publisher { return b.pubsub }

// Subscriber is the bus's watermill subscriber.
func (b *Bus) Subscriber() message.Subscriber { return b.pubsub }

// Publish publishes batch on EventsTopic and returns once every handler
// subscribed to it has acknowledged it (applied or poisoned). With no
// handler subscribed the batch is dropped: a consumer's check of
// Batch.After finds the hole.
func (b *Bus) Publish(batch Batch) error {
	msg, err := NewMessage(batch)
	if err != nil {
		return err
	}
	if err := b.pubsub.Publish(EventsTopic, msg); err != nil {
		return fmt.Errorf("bus: publish %s: %w", msg.UUID, err)
	}
	return nil
}

// Close closes the pub/sub, once every router using it is closed.
func (b *Bus) Close() error { return b.pubsub.Close() }

// Poisoned tells a router's OnPoison hook which handler gave up on which
// batch, and why.
type Poisoned struct {
	Handler string
	Topic   string
	Reason  string
	Message *message.Message
}

// RouterConfig configures a router.
type RouterConfig struct {
	// OnPoison, when set, is called with each poisoned batch, on the
	// handler's goroutine, before the batch is published on PoisonTopic
	// and acknowledged: a consumer that must not take the next batch
	// after a poisoned one is stopped here.
	OnPoison func(Poisoned)
}

// NewRouter makes a watermill router whose handlers run behind
// PoisonQueue (to PoisonTopic), Retry (MaxRetries, exponential backoff
// from RetryInterval, not for Permanent errors) and Recoverer (a panic
// becomes an error). An error caused by closing the router is not
// poisoned: the batch was not applied and is not acknowledged.
func (b *Bus) NewRouter(cfg RouterConfig) (*message.Router, error) {
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: b.cfg.CloseTimeout}, b.wlog)
	if err != nil {
		return nil, fmt.Errorf("bus: router: %w", err)
	}
	pq, err := middleware.PoisonQueueWithFilter(poisonPublisher{pub: b.pubsub, on: cfg.OnPoison}, PoisonTopic,
		func(err error) bool { return !errors.Is(err, context.Canceled) })
	if err != nil {
		return nil, fmt.Errorf("bus: poison queue: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:          b.cfg.MaxRetries,
		InitialInterval:     b.cfg.RetryInterval,
		MaxInterval:         b.cfg.RetryMaxInterval,
		Multiplier:          2,
		RandomizationFactor: 0.2,
		ShouldRetry:         func(p middleware.RetryParams) bool { return !IsPermanent(p.Err) },
		Logger:              b.wlog,
	}
	// The first added is the outermost.
	r.AddMiddleware(pq, retry.Middleware, middleware.Recoverer)
	return r, nil
}

// Handler applies one batch. Its context is not cancelled by closing the
// router: a batch being applied is finished (closing waits for it, up to
// CloseTimeout). It returns an error wrapped by Permanent when retrying
// cannot help.
type Handler func(ctx context.Context, b Batch) error

// AddHandler subscribes h, named name, to EventsTopic on r. A message that
// does not decode is a Permanent failure. Handlers added before r runs
// are subscribed when it starts; wait for r.Running() before publishing.
func (b *Bus) AddHandler(r *message.Router, name string, h Handler) *message.Handler {
	return r.AddConsumerHandler(name, EventsTopic, b.pubsub, func(msg *message.Message) error {
		batch, err := DecodeMessage(msg)
		if err != nil {
			return Permanent(err)
		}
		return h(context.WithoutCancel(msg.Context()), batch)
	})
}

// poisonPublisher tells the hook of each poisoned message before
// publishing it.
type poisonPublisher struct {
	pub message.Publisher
	on  func(Poisoned)
}

func (p poisonPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.on != nil {
		for _, m := range msgs {
			p.on(Poisoned{
				Handler: m.Metadata.Get(PoisonHandler),
				Topic:   m.Metadata.Get(PoisonTopicOf),
				Reason:  m.Metadata.Get(PoisonReason),
				Message: m,
			})
		}
	}
	return p.pub.Publish(topic, msgs...)
}

// Close does nothing: the bus owns the pub/sub.
func (poisonPublisher) Close() error { return nil }

// permanent marks an error that retrying cannot mend.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one retrying cannot mend: the batch is poisoned
// at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
