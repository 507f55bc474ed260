package main

import (
	"flag"
	"time"

	"github.com/chronolog/chronolog/app"
)

// logFlags configure the transparency log.
type logFlags struct {
	backend            string
	dir                string
	key, origin        string
	segmentEvents      int
	tick               time.Duration
	checkpointInterval time.Duration
	trillianAddr       string
	trillianTree       int64
}

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.backend, "log", "tessera", "transparency log: tessera (embedded, C2SP tiles on disk), trillian (a Trillian log server), or off")
	fs.StringVar(&f.dir, "log-dir", "", "Tessera log directory (default DATA/log)")
	fs.StringVar(&f.key, "log-key", "", "the log's note private key file (dev: DATA/log.key, created on first start)")
	fs.StringVar(&f.origin, "log-origin", "", "the log's origin, the name of its key (dev default: chronolog-dev/NODE)")
	fs.IntVar(&f.segmentEvents, "log-segment-events", 16384, "cut a segment at this many events (fewer, larger segments cost the log less)")
	fs.DurationVar(&f.tick, "log-tick", 250*time.Millisecond, "cut a segment, record new checkpoints and retry a log that is down this often")
	fs.DurationVar(&f.checkpointInterval, "log-checkpoint-interval", 200*time.Millisecond, "Tessera: publish a checkpoint this often when the tree grew (at least 100ms)")
	fs.StringVar(&f.trillianAddr, "trillian-addr", "", "Trillian log server gRPC address (host:port)")
	fs.Int64Var(&f.trillianTree, "trillian-tree", 0, "Trillian tree id: a PREORDERED_LOG tree")
}

// config is what the flags say of the log.
func (f *logFlags) config() *app.LogConfig {
	return &app.LogConfig{Backend: f.backend, Dir: f.dir, Key: f.key, Origin: f.origin, SegmentEvents: f.segmentEvents,
		Tick: f.tick, CheckpointInterval: f.checkpointInterval, TrillianAddr: f.trillianAddr, TrillianTree: f.trillianTree}
}
